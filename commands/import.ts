import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import {importDataset, type ImportResult} from '../src/dataset/import-dataset.js'

export default class Import extends TilesyncCommand {
  static override summary = 'Make the database equal to a dataset folder written by `tilesync export` (or an oxen clone of one), or import the pipeline\'s own export (generations/ + generations.csv).'
  static override description = `The whole folder is checked before the database is written: symbolic links, paths that leave the folder, unknown files, MD5 and BLAKE3 mismatches, malformed CSV and absurd sizes are refused (HOSTILE_PATH / BAD_DATASET) and nothing changes. Then the differences are written in one transaction. Refuses over uncommitted changes unless --force (they are saved first, as with checkout). HEAD does not move: commit the result.

A folder written by the generation pipeline's own export script (generations/<x>_<y>_<md5>.png, generations.csv with x,y,quadrant,hash_quadrant, generation_config.json, bounds.json) is imported additively, as the pipeline's import does: each listed tile's generation image is set (a missing tile is created with 0 in its NOT NULL columns), generation_config.json is stored in the metadata table, bounds.json and generation_config.json are copied beside the database, and no other tile or image changes.`

  static override examples = [
    '<%= config.bin %> import ../city-dataset',
    '<%= config.bin %> import ../city-dataset --force',
    '<%= config.bin %> import oxen/datasets/isometric-nyc-tiles',
  ]

  static override args = {dir: Args.string({required: true, description: 'dataset folder'})}
  static override flags = {
    force: Flags.boolean({char: 'f', description: 'overwrite uncommitted changes (they are saved first)'}),
  }

  async run(): Promise<ImportResult> {
    const {args, flags} = await this.parse(Import)
    const r = await importDataset(await this.workspace(), {dir: args.dir, force: flags.force})
    if (r.savedAs) this.say(`Saved your uncommitted changes as ${short(r.savedAs)}: get them back with \`tilesync checkout ${short(r.savedAs)}\`.`)
    if (r.pipeline) {
      const p = r.pipeline
      this.say(`Imported the pipeline's export ${r.dir}: ${p.tiles} generated tiles listed; ${p.updated} updated, ${p.added} added, ${p.unchanged} already equal; ${r.rowsWritten} rows written.`)
      if (p.generationConfig) this.say('Stored generation_config.json in the metadata table (key generation_config).')
      for (const f of p.copied) this.say(`Copied ${f.split('/').pop()} to ${f}.`)
      if (!r.unchanged) this.say('Run `tilesync commit -m "..."` to record it.')
      return r
    }
    const from = r.mode === 'exact' ? `commit ${short(r.commit)} (verified)` : 'generations.csv edited outside tilesync'
    if (r.unchanged) this.say(`The database already equals ${r.dir} (${from}); nothing written.`)
    else this.say(`Imported ${r.dir} (${from}): ${r.tiles} tiles; ${r.rowsWritten} rows written, ${r.rowsDeleted} deleted. Run \`tilesync commit -m "..."\` to record it.`)
    return r
  }
}
