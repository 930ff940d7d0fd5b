import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatBytes, short} from '../src/cli/format.js'
import {exportDataset, type ExportResult} from '../src/dataset/export-dataset.js'
import {parseBBox} from '../src/ops/diff.js'

export default class Export extends TilesyncCommand {
  static override summary = 'Write a commit as an oxen-style dataset folder (PNG files, generations.csv, README.md, tilesync/).'
  static override description = `The same layout \`push\` publishes to an oxen remote: renders/ and quadrants/ hold each tile's images as <x>_<y>_<md5>.png, generations.csv lists the tiles, and tilesync/ keeps everything else (other columns and tables, schema, commit) so \`tilesync import\` gives the database back exactly. Exporting again into the same folder writes only what changed; files of tiles that no longer exist stay unless --prune. With --bbox only the tiles inside the box are written (generations.csv and their images, no tilesync/): a batch to hand on, which \`tilesync import\` adds without deleting anything.`

  static override examples = [
    '<%= config.bin %> export ../city-dataset',
    '<%= config.bin %> export ../city-dataset v1 --prune',
    '<%= config.bin %> export ../batch-1 --bbox 0,0,15,15',
  ]

  static override args = {
    dir: Args.string({required: true, description: 'folder to write (new, or an earlier export)'}),
    revision: Args.string({description: 'commit to export (default HEAD)'}),
  }

  static override flags = {
    prune: Flags.boolean({description: 'remove image files of tiles that no longer exist'}),
    bbox: Flags.string({description: 'only the tiles inside x0,y0,x1,y1: generations.csv and their images, without tilesync/ (importing the folder then adds, never deletes)'}),
  }

  async run(): Promise<ExportResult> {
    const {args, flags} = await this.parse(Export)
    const r = await exportDataset(await this.workspace(), {dir: args.dir, revision: args.revision, prune: flags.prune, bbox: flags.bbox ? parseBBox(flags.bbox) : undefined})
    this.say(`Exported ${short(r.commit)} to ${r.dir}: ${r.tiles} tiles; ${r.written} files written (${formatBytes(r.bytes)}), ${r.skipped} unchanged${r.removed ? `, ${r.removed} removed` : ''}.`)
    return r
  }
}
