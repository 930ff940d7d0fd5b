import * as fs from 'node:fs'
import * as path from 'node:path'

import {ensureBenchDb} from './generate-bench-db.js'
import {run, type Sample} from './measure.js'

/**
 * The `similar` case of `npm run bench`: a history of `quadrants` tiles (default 100,000;
 * small images, since the case times the search, not decoding), committed once and kept in the
 * cache directory. Times the first `similar --duplicates` (every image decoded and hashed, on
 * all cores), then, with the hashes cached, `similar --tile` and `similar --duplicates`, each a
 * fresh process as a user runs it. The target: under 1 s once hashes are cached.
 */
export async function similarCase(ctx: {
  cache: string
  quadrants: number
  runs: number
  bin: string
  env: NodeJS.ProcessEnv
  tilesync: (cwd: string, ...args: string[]) => Sample
  record: (kase: string, tool: string, samples: Sample[], extra?: {target?: string; note?: string}) => unknown
}): Promise<void> {
  const {quadrants} = ctx
  const db = await ensureBenchDb(ctx.cache, {quadrants, imageSize: 32, noise: 0.2, generationRatio: 0.9, seed: 3})
  const dir = path.join(ctx.cache, `similar-${quadrants}`)
  if (!fs.existsSync(path.join(dir, '.tilesync', 'refs', 'heads', 'main'))) {
    fs.rmSync(dir, {recursive: true, force: true})
    fs.mkdirSync(path.join(dir, 'generations', 'v01'), {recursive: true})
    fs.copyFileSync(db.file, path.join(dir, 'generations', 'v01', 'quadrants.db'))
    run(process.execPath, [ctx.bin, 'init'], dir, ctx.env)
    console.log(`building the ${quadrants}-tile history for similar (first commit) ...`)
    run(process.execPath, [ctx.bin, 'commit', '-m', `${quadrants} tiles`], dir, {...ctx.env, TILESYNC_NO_PROGRESS: '1'})
  }
  const label = `similar, ${quadrants} tiles (${db.images} images)`
  const cacheFile = path.join(dir, '.tilesync', 'cache', 'perceptual', 'signatures-v1.bin')
  fs.rmSync(cacheFile, {force: true})
  ctx.record(label, 'tilesync similar --duplicates, nothing cached', [ctx.tilesync(dir, 'similar', '--duplicates', '--json')], {note: 'decodes and hashes every image once'})
  const tile: Sample[] = []
  const dups: Sample[] = []
  for (let i = 0; i < ctx.runs; i++) {
    tile.push(ctx.tilesync(dir, 'similar', '--tile', '0,0', '-n', '10', '--json'))
    dups.push(ctx.tilesync(dir, 'similar', '--duplicates', '--json'))
  }
  ctx.record(label, 'tilesync similar --tile, cached', tile, {target: '< 1 s'})
  ctx.record(label, 'tilesync similar --duplicates, cached', dups, {target: '< 1 s'})
}
