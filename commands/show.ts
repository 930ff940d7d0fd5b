import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {TilesyncError} from '../src/core/errors.js'
import {formatBytes, formatChangeSet, short} from '../src/cli/format.js'
import {parseTile} from '../src/ops/checkout.js'
import {parseBBox} from '../src/ops/diff.js'
import {showCommit, type ShowCommitResult, showRegion, type ShowRegionResult, showTile, type ShowTileResult} from '../src/ops/show.js'

export default class Show extends TilesyncCommand {
  static override summary = 'Show a commit, or one tile of it (and extract its image).'
  static override examples = [
    '<%= config.bin %> show HEAD',
    '<%= config.bin %> show HEAD~2 --tile 3,4',
    '<%= config.bin %> show v1 --tile 3,4 --layer generation -o tile.png',
    '<%= config.bin %> show HEAD --bbox 0,0,15,15 --layer generation -o batch-1/',
  ]

  static override args = {revision: Args.string({default: 'HEAD', description: 'revision (default HEAD)'})}
  static override flags = {
    tile: Flags.string({description: 'tile X,Y', exclusive: ['bbox']}),
    bbox: Flags.string({description: 'with -o DIR: write the images of the tiles inside x0,y0,x1,y1 as DIR/<x>_<y>.png'}),
    layer: Flags.string({description: 'image layer (e.g. render, generation); default the last image column'}),
    output: Flags.string({char: 'o', description: 'write the layer image to this file (with --bbox: this folder)'}),
  }

  async run(): Promise<ShowCommitResult | ShowTileResult | ShowRegionResult> {
    const {args, flags} = await this.parse(Show)
    const ws = await this.workspace()
    if (flags.bbox) {
      if (!flags.output) throw new TilesyncError('BAD_ARGUMENT', '--bbox needs -o DIR', {hint: 'name the folder to write the region\'s images to, e.g. -o batch-1/'})
      const r = await showRegion(ws, {revision: args.revision, bbox: parseBBox(flags.bbox), layer: flags.layer, output: flags.output})
      this.say(`Wrote ${r.files} ${r.layer} image(s) of tiles ${r.bbox.join(',')} at ${short(r.revision)} to ${r.dir} (${formatBytes(r.bytes)}).`)
      return r
    }
    if (flags.tile) {
      const [x, y] = parseTile(flags.tile)
      const r = await showTile(ws, {revision: args.revision, x, y, layer: flags.layer, output: flags.output})
      this.say(`tile ${x},${y} at ${short(r.revision)}`)
      for (const [k, v] of Object.entries(r.columns)) {
        const text = v && typeof v === 'object' ? `${short((v as {object: string}).object)} (${formatBytes((v as {size: number}).size)})` : String(v)
        this.say(`  ${k}: ${text}`)
      }
      if (r.output) this.say(`Wrote ${r.layer} image to ${r.output}`)
      return r
    }
    if (flags.output || flags.layer) this.error('--layer and -o need --tile X,Y', {exit: 2})
    const r = await showCommit(ws, args.revision)
    this.say(`commit ${r.commit.id}`)
    if (r.commit.parents.length) this.say(`Parents: ${r.commit.parents.map((p) => short(p)).join(' ')}`)
    this.say(`Author:  ${r.commit.author} <${r.commit.email}>`)
    this.say(`Date:    ${r.commit.date}`)
    this.say('')
    for (const line of r.commit.message.split('\n')) this.say(`    ${line}`)
    this.say('')
    for (const line of formatChangeSet(r.changes, {limit: 200})) this.say(line)
    return r
  }
}
