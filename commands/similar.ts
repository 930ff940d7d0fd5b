import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import {parseTile} from '../src/ops/checkout.js'
import {NEAR_DISTANCE} from '../src/perceptual/dhash.js'
import type {DuplicatesResult, SimilarResult} from '../src/ops/similar.js'

export default class Similar extends TilesyncCommand {
  static override summary = 'Find the tiles that look most like one tile, or groups of near-identical tiles, at a revision.'
  static override description = `Compares perceptual hashes (a 128-bit difference hash of the decoded pixels): the distance is the number of differing bits, 0 for the same picture, about 64 for unrelated ones; ${NEAR_DISTANCE} or less counts as nearly identical. "same pixels" is decided from the decoded pixels themselves. Hashes are computed once per image object (on every core, with a progress bar on a terminal) and cached in .tilesync/cache/perceptual/, so later runs only read the cache; \`tilesync serve\` can fill it in the background. --tile compares within one layer (--layer, default the tile's last layer with an image); --duplicates groups tiles of the same layer within --threshold of each other (joined transitively).`

  static override examples = [
    '<%= config.bin %> similar --tile 12,-3',
    '<%= config.bin %> similar --tile 12,-3 --layer render -n 20 HEAD~5',
    '<%= config.bin %> similar --duplicates',
    '<%= config.bin %> similar --duplicates --layer generation --threshold 4 --json',
  ]

  static override args = {revision: Args.string({description: 'revision to search (default HEAD)', default: 'HEAD'})}
  static override flags = {
    tile: Flags.string({description: 'the tile X,Y to find look-alikes of', exactlyOne: ['tile', 'duplicates']}),
    layer: Flags.string({description: 'image layer to compare (e.g. generation, render)'}),
    n: Flags.integer({char: 'n', description: 'with --tile: how many tiles to list', default: 10, min: 1}),
    duplicates: Flags.boolean({description: 'list groups of near-identical tiles', exactlyOne: ['tile', 'duplicates']}),
    threshold: Flags.integer({description: `with --duplicates: most differing bits (of 128) to count as near-identical (0..32, default ${NEAR_DISTANCE})`, default: NEAR_DISTANCE}),
  }

  async run(): Promise<SimilarResult | DuplicatesResult> {
    const {args, flags} = await this.parse(Similar)
    const ws = await this.workspace()
    // Loaded only here: the image decoder is not needed by other commands.
    const {duplicateTiles, similarTiles} = await import('../src/ops/similar.js')
    if (flags.duplicates) {
      const r = await duplicateTiles(ws, {revision: args.revision, layer: flags.layer, threshold: flags.threshold})
      this.say(`${r.groups.length} group(s) of near-identical tiles at ${args.revision} (${short(r.revision)}) among ${r.images} images of ${r.layers.join(', ')} (distance <= ${r.threshold} of 128 bits)${cacheNote(r.signatures)}`)
      for (const g of r.groups) {
        const tiles = g.tiles.map((t, i) => (i === 0 ? `${t.x},${t.y}` : `${t.x},${t.y} (${t.samePixels ? 'same pixels' : `distance ${t.distance}`})`))
        this.say(`  ${g.layer}, ${g.tiles.length} tiles: ${tiles.join('  ')}`)
      }
      return r
    }
    const r = await similarTiles(ws, {tile: parseTile(flags.tile!), layer: flags.layer, revision: args.revision, limit: flags.n})
    this.say(`Tiles most like ${r.tile.x},${r.tile.y} (${r.tile.layer}, ${short(r.tile.object)}) at ${args.revision} (${short(r.revision)}), of ${r.compared} compared${cacheNote(r.signatures)}:`)
    for (const [i, m] of r.matches.entries()) {
      this.say(`  ${String(i + 1).padStart(3)}. ${`${m.x},${m.y}`.padEnd(12)} distance ${String(m.distance).padStart(3)}${m.samePixels ? '  same pixels' : m.distance <= NEAR_DISTANCE ? '  nearly identical' : ''}  ${short(m.object)}`)
    }
    return r
  }
}

function cacheNote(s: {computed: number; cached: number}): string {
  return s.computed ? `; hashed ${s.computed} new image(s), ${s.cached} from the cache` : ''
}
