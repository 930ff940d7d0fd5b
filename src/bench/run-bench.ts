/**
 * `npm run bench [-- --quadrants N --size PX --runs R --only a,b --noise F --generation-ratio F --viewer-tiles N]`
 * (cases: first-commit, incremental, clone, clone-cold, diff, s3, destroy, sync-api, pipeline [--pipeline-runs R], version, similar [--similar-quadrants N], viewer, and, only
 * when named, city): builds the benchmark database with the project's own generator, runs each
 * operation several times as a user would (a fresh process each time), and prints medians and
 * peak memory. Where restic, git, b3sum and rclone are installed, runs them on the same tiles in
 * the same run and prints the ratios. Results go to bench-output/results.{json,md}.
 * `--noise` (grain per pixel, 0..1, default 0.2) and `--generation-ratio` (share of quadrants
 * with a generation image, default 0.9) shape the database: noisier tiles compress worse and
 * are larger. `--only city` (see cityCase) adds a database `--city-quadrants` (default 20,000)
 * quadrants large and compares each command's time there with the bench database's.
 */
import {spawn, spawnSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import Database from 'better-sqlite3'

import {activeHashImplementation} from '../core/hash.js'
import {makeTilePng} from '../sample/tile-png.js'
import {ensureBenchDb} from './generate-bench-db.js'
import {has, measure, median, run, type Sample} from './measure.js'
import {destroyCase, syncApiCase} from './remote-data-cases.js'
import {similarCase} from './similar-case.js'
import {pipelineCase} from './pipeline-case.js'
import {viewerCases} from './viewer-bench.js'
import {wanCases} from './wan-case.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const BIN = path.join(repoRoot, 'bin', 'run.js')

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback
}

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(`usage: npm run bench -- [options]   (or: node dist/src/bench/run-bench.js [options])

  --quadrants N          quadrants in the bench database (default 2000)
  --size PX              image edge in pixels (default 512)
  --noise F              grain per pixel, 0-1 (default 0.2); noisier tiles compress worse
  --generation-ratio F   share of quadrants with a generation image, 0-1 (default 0.9)
  --runs R               runs per case (default 5); medians are reported
  --pipeline-runs R      runs of each of the pipeline case's four first commits (default: --runs, at most 3)
  --only a,b             cases: first-commit, incremental, clone, clone-cold, diff, s3, destroy,
                         sync-api, pipeline, version, similar, viewer (the default set), and city
                         (only when named)
  --similar-quadrants N  tiles in the similar case's history (default 100000)
  --viewer-tiles N       tiles in the viewer case's map (default 100000)
  --city-quadrants N     quadrants in the city case's database (default 20000, about 13 GB)
  --city-runs R          runs of the city case's first commit and clone (default 1)
  --only wan             (only when named) s3rver behind a proxy delaying each request, tilesync
                         and rclone on the same tiles: first push, clone, push and pull after
                         100 tiles changed, with the requests each made
  --wan-delay-ms MS      delay per request in the wan case (default 40)
  --wan-quadrants N      quadrants of the wan case's small-tile database (default 10000; 0 leaves it out)
  --wan-small-size PX    image edge of that database (default 32)
  --wan-large-quadrants N  quadrants of its 512 px database (default 2000; 0 leaves it out)
  --out DIR              results and work directory (default bench-output)
  --cache DIR            where generated databases are kept (default OUT/cache)
  --no-install           do not apt-get install restic, rclone or b3sum when they are missing

examples:
  npm run bench
  npm run bench -- --noise 0.5 --generation-ratio 0.3 --only first-commit --runs 3
  npm run bench -- --only clone,clone-cold,s3 --runs 3
  npm run bench -- --only city --runs 3
  npm run bench -- --only wan --wan-delay-ms 40
  npm run bench -- --only pipeline --pipeline-runs 3
  npm run bench -- --only similar --similar-quadrants 20000
  npm run bench -- --only viewer --viewer-tiles 20000
`)
  process.exit(0)
}

const quadrants = Number(arg('quadrants', '2000'))
const imageSize = Number(arg('size', '512'))
const noise = Number(arg('noise', '0.2'))
const generationRatio = Number(arg('generation-ratio', '0.9'))
const cityQuadrants = Number(arg('city-quadrants', '20000'))
const cityRuns = Number(arg('city-runs', '1'))
const runs = Number(arg('runs', '5'))
const only = arg('only', '').split(',').filter(Boolean)
const out = path.resolve(arg('out', path.join(repoRoot, 'bench-output')))
const cache = path.resolve(arg('cache', path.join(out, 'cache')))
const work = path.join(out, 'work')
const env = {TILESYNC_AUTHOR_NAME: 'Bench', TILESYNC_AUTHOR_EMAIL: 'bench@example.com', RESTIC_PASSWORD: 'bench', GIT_AUTHOR_NAME: 'Bench', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'Bench', GIT_COMMITTER_EMAIL: 'b@x'}

interface Row {
  case: string
  tool: string
  runs: number
  medianSeconds: number
  maxRssMb: number | null
  target?: string
  note?: string
}

const rows: Row[] = []
const wanted = (c: string): boolean => only.length === 0 || only.includes(c)

function record(kase: string, tool: string, samples: Sample[], extra: Partial<Row> = {}): Row {
  const row: Row = {
    case: kase, tool, runs: samples.length,
    medianSeconds: median(samples.map((s) => s.seconds)),
    maxRssMb: samples.some((s) => s.maxRssMb !== null) ? Math.max(...samples.map((s) => s.maxRssMb ?? 0)) : null,
    ...extra,
  }
  rows.push(row)
  console.log(`${kase.padEnd(34)} ${tool.padEnd(22)} median ${row.medianSeconds.toFixed(3)} s${row.maxRssMb ? `, peak ${row.maxRssMb.toFixed(0)} MB` : ''} (${samples.length} runs)`)
  return row
}

const tilesync = (cwd: string, ...args: string[]): Sample => measure(process.execPath, [BIN, ...args], {cwd, env})
const fresh = (dir: string): string => {
  fs.rmSync(dir, {recursive: true, force: true})
  fs.mkdirSync(dir, {recursive: true})
  return dir
}

/**
 * The peers the bench compares with are Debian packages: where one is missing and this is root
 * with apt-get (as CI and the project's machines are), it is installed; otherwise its rows are
 * left out, as before. `--no-install` never installs.
 */
function installPeers(): void {
  const missing = ['restic', 'rclone', 'b3sum'].filter((c) => !has(c))
  if (missing.length === 0 || process.argv.includes('--no-install')) return
  if (process.getuid?.() !== 0 || !has('apt-get')) {
    console.log(`not installed: ${missing.join(', ')} (their comparisons are left out; apt-get install ${missing.join(' ')})`)
    return
  }
  console.log(`installing ${missing.join(', ')} for the comparisons (apt-get)`)
  const apt = (args: string[]): boolean => spawnSync('apt-get', args, {stdio: 'ignore', env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}}).status === 0
  if (!apt(['install', '-y', '-qq', ...missing])) {
    apt(['update', '-qq'])
    if (!apt(['install', '-y', '-qq', ...missing])) console.log(`could not install ${missing.join(', ')}; their comparisons are left out`)
  }
}

/** Writes every image of the database as files, the form restic, git and b3sum are given. */
function exportTiles(dbFile: string, dir: string): void {
  fresh(dir)
  const db = new Database(dbFile, {readonly: true})
  for (const r of db.prepare('SELECT quadrant_x AS x, quadrant_y AS y, render, generation FROM quadrants').iterate() as Iterable<{x: number; y: number; render: Buffer | null; generation: Buffer | null}>) {
    if (r.render) fs.writeFileSync(path.join(dir, `${r.x}_${r.y}_render.png`), r.render)
    if (r.generation) fs.writeFileSync(path.join(dir, `${r.x}_${r.y}_generation.png`), r.generation)
  }
  db.close()
}

/** Replaces the generation image of `count` tiles (a different set per `round`), in the database and in the exported files. */
function changeTiles(dbFile: string, tilesDir: string | null, count: number, round: number): void {
  const db = new Database(dbFile)
  const keys = db.prepare('SELECT quadrant_x AS x, quadrant_y AS y FROM quadrants ORDER BY quadrant_y, quadrant_x').all() as Array<{x: number; y: number}>
  const up = db.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?')
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const k = keys[(round * 7919 + i * 97) % keys.length]
      const png = makeTilePng(imageSize, 1_000_000 + round * 1000 + i, 0.2)
      up.run(png, k.x, k.y)
      if (tilesDir) fs.writeFileSync(path.join(tilesDir, `${k.x}_${k.y}_generation.png`), png)
    }
  })()
  db.close()
}

/** Empties the page cache (Linux, root): what is read next comes from the disk. */
function dropCaches(): boolean {
  try {
    run('sync', [], out)
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
    return true
  } catch {
    return false
  }
}

/**
 * Clone against `cp -r` and `cp -r` + `sync -f`, in turns from the same state: the clone ends
 * durable, a plain copy does not. With `cold`, the page cache is emptied before each.
 */
function cloneCase(remote: string, label: string, cold: boolean): void {
  const cloneS: Sample[] = []
  const cpS: Sample[] = []
  const cpSyncS: Sample[] = []
  const copy = path.join(work, 'cp')
  const settle = (): void => {
    if (cold) dropCaches()
    else run('sync', [], work)
  }
  for (let i = 0; i < runs; i++) {
    const target = path.join(work, 'clone')
    fs.rmSync(target, {recursive: true, force: true})
    settle()
    cloneS.push(tilesync(work, 'clone', remote, target))
    fs.rmSync(copy, {recursive: true, force: true})
    settle()
    cpS.push(measure('cp', ['-r', remote, copy], {cwd: work}))
    fs.rmSync(copy, {recursive: true, force: true})
    settle()
    cpSyncS.push(measure('sh', ['-c', 'cp -r "$0" "$1" && sync -f "$1"', remote, copy], {cwd: work}))
  }
  fs.rmSync(copy, {recursive: true, force: true})
  const c = record(label, 'tilesync', cloneS, {target: '<= 1.2x cp -r + sync -f'})
  const cp = record(label, 'cp -r of the remote', cpS)
  const cps = record(label, 'cp -r + sync -f', cpSyncS)
  console.log(`  ratio tilesync / cp: ${(c.medianSeconds / cp.medianSeconds).toFixed(2)}; tilesync / (cp + sync): ${(c.medianSeconds / cps.medianSeconds).toFixed(2)}`)
  if (!cold) {
    // What a clone does that no cp does, each timed alone with the bytes in memory: verifying
    // every byte against its id, and writing the rows into SQLite. Each is a floor for a clone.
    const floor = (which: 'hash' | 'insert', tool: string): {row: Row; cores: number} => {
      const s: Sample[] = []
      let cores = 1
      for (let i = 0; i < runs; i++) {
        const printed = JSON.parse(run(process.execPath, [path.join(repoRoot, 'dist', 'src', 'bench', 'clone-floors.js'), which, fs.existsSync(path.join(remote, 'packs')) ? path.join(remote, 'packs') : path.join(remote, 'objects')], work)) as {seconds: number; cores?: number}
        s.push({seconds: printed.seconds, maxRssMb: null})
        cores = printed.cores ?? cores
      }
      const row = record(label, tool, s)
      console.log(`  ratio ${tool} / cp: ${(row.medianSeconds / cp.medianSeconds).toFixed(2)}`)
      return {row, cores}
    }
    const hash = floor('hash', 'hashing alone, all cores')
    const insert = floor('insert', 'SQLite insert alone')
    // The hash keeps every core busy and the insert one more: however well they overlap, the
    // two need this much wall time between them.
    const both = (hash.row.medianSeconds * hash.cores + insert.row.medianSeconds) / hash.cores
    rows.push({case: label, tool: `hashing + insert on ${hash.cores} cores (derived)`, runs, medianSeconds: both, maxRssMb: null, note: 'derived from the two rows above'})
    console.log(`  floor of hashing + insert on ${hash.cores} cores: ${both.toFixed(3)} s, ${(both / cp.medianSeconds).toFixed(2)}x cp`)
  }
}

async function main(): Promise<void> {
  fs.mkdirSync(out, {recursive: true})
  console.log(`benchmark: ${quadrants} quadrants, ${imageSize} px images, ${runs} runs per case; work in ${out}`)
  for (const [name, v, max] of [['noise', noise, 1], ['generation-ratio', generationRatio, 1]] as const) {
    if (!(v >= 0 && v <= max)) throw new Error(`--${name} takes a number from 0 to ${max}`)
  }
  const bench = await ensureBenchDb(cache, {quadrants, imageSize, noise, generationRatio, seed: 1})
  console.log(`database: ${bench.images} images, ${(bench.bytes / 1e9).toFixed(2)} GB${bench.reused ? ' (cached)' : ''}; noise ${noise}, generation ratio ${generationRatio}; hashing with ${activeHashImplementation()} BLAKE3`)
  const onePercent = Math.max(1, Math.round(quadrants / 100))
  const firstLabel = `first commit (${(bench.bytes / 1e9).toFixed(2)} GB)`
  installPeers()
  const peers = {restic: has('restic'), git: has('git'), b3sum: has('b3sum'), rclone: has('rclone'), cp: has('cp')}
  const project = path.join(work, 'project')
  const dbRel = 'generations/v01/quadrants.db'
  const dbFile = path.join(project, dbRel)
  const tiles = path.join(work, 'tiles')

  const resetProject = (): void => {
    fresh(project)
    fs.mkdirSync(path.dirname(dbFile), {recursive: true})
    fs.copyFileSync(bench.file, dbFile)
    run(process.execPath, [BIN, 'init'], project, env)
  }

  if (wanted('first-commit')) {
    // tilesync and restic take turns, each starting from the same state (its previous output
    // removed, everything flushed), so a shared machine's drift affects both alike.
    if (peers.restic || peers.git || peers.b3sum) exportTiles(bench.file, tiles)
    const ours: Sample[] = []
    const theirs: Sample[] = []
    for (let i = 0; i < runs; i++) {
      resetProject()
      run('sync', [], project)
      ours.push(tilesync(project, 'commit', '-m', 'first'))
      if (!peers.restic) continue
      const repo = fresh(path.join(work, 'restic'))
      run('restic', ['init', '--repo', repo], work, env)
      run('sync', [], work)
      theirs.push(measure('restic', ['backup', '--repo', repo, '--quiet', tiles], {cwd: work, env}))
    }
    const t = record(firstLabel, 'tilesync', ours, {target: '<= 0.25x restic, < 300 MB'})
    if (peers.restic) {
      const r = record(firstLabel, 'restic backup', theirs)
      const pairs = ours.map((o, i) => o.seconds / theirs[i].seconds)
      console.log(`  ratio tilesync / restic: ${(t.medianSeconds / r.medianSeconds).toFixed(2)} (medians); per run ${pairs.map((x) => x.toFixed(2)).join(', ')}`)
    }
    if (peers.git) {
      const s: Sample[] = []
      for (let i = 0; i < Math.min(runs, 3); i++) {
        fs.rmSync(path.join(tiles, '.git'), {recursive: true, force: true})
        run('git', ['init', '-q'], tiles)
        run('sync', [], work)
        s.push(measure('sh', ['-c', 'git add -A && git commit -qm first'], {cwd: tiles, env}))
      }
      const g = record(firstLabel, 'git add + commit', s)
      console.log(`  ratio tilesync / git: ${(t.medianSeconds / g.medianSeconds).toFixed(2)}`)
    }
    if (peers.b3sum) {
      const s: Sample[] = []
      for (let i = 0; i < runs; i++) s.push(measure('sh', ['-c', 'b3sum -- *.png > /dev/null'], {cwd: tiles}))
      const b = record(firstLabel, 'b3sum (hash only)', s)
      console.log(`  ratio tilesync / b3sum: ${(t.medianSeconds / b.medianSeconds).toFixed(2)}`)
    }
  }

  if (wanted('incremental')) {
    resetProject()
    run(process.execPath, [BIN, 'commit', '-m', 'first'], project, env)
    const haveTiles = fs.existsSync(tiles)
    const commitS: Sample[] = []
    const statusS: Sample[] = []
    const checkoutS: Sample[] = []
    const resticS: Sample[] = []
    const gitS: Sample[] = []
    const resticRepo = path.join(work, 'restic')
    // Rounds continue across invocations (the exported tiles and the restic and git
    // repositories outlive a run): a repeated round would change nothing for them.
    const roundsFile = path.join(work, 'incremental-rounds')
    const firstRound = Number(fs.existsSync(roundsFile) ? fs.readFileSync(roundsFile, 'utf8') : 0) + 1
    fs.writeFileSync(roundsFile, String(firstRound + runs - 1))
    for (let i = 0; i < runs; i++) {
      changeTiles(dbFile, haveTiles ? tiles : null, onePercent, firstRound + i)
      commitS.push(tilesync(project, 'commit', '-m', `round ${i}`))
      statusS.push(tilesync(project, 'status'))
      checkoutS.push(tilesync(project, 'checkout', 'HEAD~1'))
      run(process.execPath, [BIN, 'checkout', 'main'], project, env)
      if (haveTiles && peers.restic && fs.existsSync(resticRepo)) resticS.push(measure('restic', ['backup', '--repo', resticRepo, '--quiet', tiles], {cwd: work, env}))
      if (haveTiles && peers.git && fs.existsSync(path.join(tiles, '.git'))) gitS.push(measure('sh', ['-c', `git add -A && git commit -qm r${i}`], {cwd: tiles, env}))
    }
    const c = record(`commit after 1% (${onePercent} tiles)`, 'tilesync', commitS, {target: '< 0.5 s'})
    if (resticS.length) console.log(`  ratio tilesync / restic: ${(c.medianSeconds / record(`commit after 1% (${onePercent} tiles)`, 'restic backup', resticS).medianSeconds).toFixed(2)}`)
    if (gitS.length) console.log(`  ratio tilesync / git: ${(c.medianSeconds / record(`commit after 1% (${onePercent} tiles)`, 'git add + commit', gitS).medianSeconds).toFixed(2)}`)
    record('status, nothing changed', 'tilesync', statusS, {target: '< 0.3 s'})
    record('checkout HEAD~1 after 1%', 'tilesync', checkoutS, {target: '< 0.5 s'})
  }

  if (wanted('clone') || wanted('clone-cold')) {
    if (!fs.existsSync(path.join(project, '.tilesync'))) {
      resetProject()
      run(process.execPath, [BIN, 'commit', '-m', 'first'], project, env)
    }
    const remote = fresh(path.join(work, 'remote'))
    fs.rmSync(remote, {recursive: true, force: true})
    run(process.execPath, [BIN, 'remote', 'add', 'bench', remote], project, env)
    run(process.execPath, [BIN, 'push', 'bench', 'main'], project, env)
    run(process.execPath, [BIN, 'remote', 'remove', 'bench'], project, env)
    if (wanted('clone')) cloneCase(remote, 'clone from a directory remote', false)
    // The remote read from disk, not memory: a remote on another disk, or not read lately.
    if (wanted('clone-cold')) {
      if (dropCaches()) cloneCase(remote, 'clone, remote not in the page cache', true)
      else console.log('clone, remote not in the page cache: skipped (dropping the page cache needs root on Linux)')
    }
  }

  if (wanted('diff')) {
    const dir = path.join(cache, 'history-1m')
    if (!fs.existsSync(path.join(dir, '.tilesync', 'refs', 'heads', 'main'))) {
      fresh(dir)
      const db = new Database(path.join(dir, 'tiles.db'))
      db.pragma('journal_mode = OFF')
      db.exec('CREATE TABLE quadrants (quadrant_x INTEGER NOT NULL, quadrant_y INTEGER NOT NULL, generation BLOB, notes TEXT, PRIMARY KEY (quadrant_x, quadrant_y))')
      const ins = db.prepare('INSERT INTO quadrants VALUES (?, ?, NULL, ?)')
      db.transaction(() => {
        for (let x = -500; x < 500; x++) for (let y = -500; y < 500; y++) ins.run(x, y, 'seeded')
      })()
      db.close()
      run(process.execPath, [BIN, 'init', '--db', 'tiles.db'], dir, env)
      console.log('building the 1,000,000-tile history (first commit of 1M rows) ...')
      const first = tilesync(dir, 'commit', '-m', 'one million tiles')
      console.log(`  (first commit of 1M small rows took ${first.seconds.toFixed(1)} s)`)
      const db2 = new Database(path.join(dir, 'tiles.db'))
      const up = db2.prepare(`UPDATE quadrants SET notes = 'changed' WHERE quadrant_x = ? AND quadrant_y = ?`)
      db2.transaction(() => {
        for (let i = 0; i < 100; i++) up.run(((i * 7919) % 1000) - 500, ((i * 104729) % 1000) - 500)
      })()
      db2.close()
      run(process.execPath, [BIN, 'commit', '-m', '100 tiles'], dir, env)
    }
    const s: Sample[] = []
    for (let i = 0; i < runs; i++) s.push(tilesync(dir, 'diff', 'HEAD~1', 'HEAD', '--json'))
    record('diff of 100 tiles in 1M-tile history', 'tilesync', s, {target: '< 0.5 s'})
  }

  if (wanted('s3')) await s3Cases(bench.file, onePercent)
  if (wanted('destroy')) await destroyCase({work, runs, bin: BIN, repoRoot, env, record})
  if (wanted('sync-api')) await syncApiCase({work, runs, bin: BIN, repoRoot, env, record})
  if (wanted('pipeline')) await pipelineCase({benchFile: bench.file, bytes: bench.bytes, work, runs: Number(arg('pipeline-runs', String(Math.min(runs, 3)))), bin: BIN, repoRoot, env, record})

  // Never in the default run: it generates and copies tens of gigabytes.
  if (only.includes('city')) await cityCase(bench)
  if (only.includes('wan')) {
    const large = Number(arg('wan-large-quadrants', '2000'))
    await wanCases({
      work, cache, bin: BIN, env, record, delayMs: Number(arg('wan-delay-ms', '40')),
      databases: [{quadrants: Number(arg('wan-quadrants', '10000')), size: Number(arg('wan-small-size', '32'))}, ...(large > 0 ? [{quadrants: large, size: 512}] : [])],
    })
  }
  if (wanted('similar')) await similarCase({cache, quadrants: Number(arg('similar-quadrants', '100000')), runs, bin: BIN, env, tilesync, record})
  if (wanted('viewer')) await viewerCases({work, tiles: Number(arg('viewer-tiles', '100000')), runs, bin: BIN, repoRoot, env, record})

  if (wanted('version')) {
    const s: Sample[] = []
    for (let i = 0; i < Math.max(runs, 5); i++) s.push(tilesync(repoRoot, '--version'))
    record('tilesync --version', 'tilesync', s, {target: '< 0.15 s'})
  }

  fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify({quadrants, imageSize, runs, images: bench.images, bytes: bench.bytes, rows}, null, 2))
  const md = ['| case | tool | median (s) | peak MB | target | note |', '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.case} | ${r.tool} | ${r.medianSeconds.toFixed(3)} | ${r.maxRssMb?.toFixed(0) ?? ''} | ${r.target ?? ''} | ${r.note ?? ''} |`)].join('\n')
  fs.writeFileSync(path.join(out, 'results.md'), md + '\n')
  console.log(`\n${md}\n\nwritten to ${path.join(out, 'results.md')}`)
}

/**
 * The city-sized case (`--only city`): the bench database and one of `--city-quadrants`
 * (default 20,000: about 13 GB of 512 px tiles), each put through the same commands in the same
 * run: first commit, status with nothing changed, a commit after 1% of its tiles changed,
 * checkout HEAD~1 (and back), push to a directory remote, clone from it. Goals: every command's
 * peak memory under 300 MB; status, the 1% commit and the checkout within 1.2x of their times on
 * the bench database; the first commit and the clone linear in bytes (within 1.15x of the bench
 * database's times scaled by the ratio of the two databases' bytes). The first commit and the
 * clone run `--city-runs` times (default 1), the rest `--runs` times. Needs free disk for two
 * copies of the city database besides the cached one; each size's work directory is removed
 * when it is done.
 */
async function cityCase(small: {file: string; bytes: number; images: number}): Promise<void> {
  const city = await ensureBenchDb(cache, {quadrants: cityQuadrants, imageSize, noise, generationRatio, seed: 1})
  console.log(`city database: ${cityQuadrants} quadrants, ${city.images} images, ${(city.bytes / 1e9).toFixed(2)} GB${city.reused ? ' (cached)' : ''}`)
  const free = fs.statfsSync(out)
  // At most two copies at once besides the cached database: the project's database and its
  // store, then the store and the remote (the database goes before the push, the store before
  // the clone writes its database).
  const need = 2 * fs.statSync(city.file).size + 2e9
  if (free.bavail * free.bsize < need) throw new Error(`the city case needs ${(need / 1e9).toFixed(0)} GB free under ${out} (two copies of the database: a working copy and its store, then the store and a remote); ${(free.bavail * free.bsize / 1e9).toFixed(0)} GB are`)
  const sizes = [{name: 'bench database', db: small, q: quadrants}, {name: 'city database', db: city, q: cityQuadrants}]
  const results = new Map<string, Map<string, Row>>()
  for (const {name, db, q} of sizes) {
    const dir = fresh(path.join(work, 'city'))
    const project = path.join(dir, 'project')
    const dbFile = path.join(project, 'generations/v01/quadrants.db')
    const remote = path.join(dir, 'remote')
    const onePercent = Math.max(1, Math.round(q / 100))
    const label = (what: string): string => `city: ${what}, ${name} (${(db.bytes / 1e9).toFixed(2)} GB)`
    const rowsHere = new Map<string, Row>()
    const keep = (key: string, row: Row): void => void rowsHere.set(key, row)
    try {
      const first: Sample[] = []
      for (let i = 0; i < cityRuns; i++) {
        fresh(project)
        fs.mkdirSync(path.dirname(dbFile), {recursive: true})
        fs.copyFileSync(db.file, dbFile)
        run(process.execPath, [BIN, 'init'], project, env)
        run('sync', [], project)
        first.push(tilesync(project, 'commit', '-m', 'first'))
      }
      keep('first commit', record(label('first commit'), 'tilesync', first))
      const statusS: Sample[] = []
      const commitS: Sample[] = []
      const checkoutS: Sample[] = []
      for (let i = 0; i < runs; i++) {
        statusS.push(tilesync(project, 'status'))
        changeTiles(dbFile, null, onePercent, 300 + i)
        commitS.push(tilesync(project, 'commit', '-m', `1% round ${i}`))
        checkoutS.push(tilesync(project, 'checkout', 'HEAD~1'))
        run(process.execPath, [BIN, 'checkout', 'main'], project, env)
      }
      keep('status', record(label('status, nothing changed'), 'tilesync', statusS))
      keep('1% commit', record(label(`commit after 1% (${onePercent} tiles)`), 'tilesync', commitS))
      keep('checkout', record(label('checkout HEAD~1'), 'tilesync', checkoutS))
      // The push reads only the store: the working database goes first, to make room.
      fs.rmSync(dbFile, {force: true})
      run(process.execPath, [BIN, 'remote', 'add', 'city', remote], project, env)
      keep('push', record(label('push to a directory remote'), 'tilesync', [tilesync(project, 'push', 'city', 'main')]))
      // Its database, store and copy go before the clone, which needs room for another database.
      fs.rmSync(project, {recursive: true, force: true})
      const cloneS: Sample[] = []
      for (let i = 0; i < cityRuns; i++) {
        const target = path.join(dir, 'clone')
        fs.rmSync(target, {recursive: true, force: true})
        run('sync', [], dir)
        cloneS.push(tilesync(dir, 'clone', remote, target))
      }
      keep('clone', record(label('clone from a directory remote'), 'tilesync', cloneS))
    } finally {
      fs.rmSync(dir, {recursive: true, force: true})
    }
    results.set(name, rowsHere)
  }
  const [a, b] = sizes.map((s) => results.get(s.name)!)
  const scale = city.bytes / small.bytes
  console.log(`city case: the city database holds ${scale.toFixed(2)}x the bench database's bytes`)
  for (const [key, row] of b) {
    const ratio = row.medianSeconds / a.get(key)!.medianSeconds
    const linear = key === 'first commit' || key === 'clone' || key === 'push'
    const goal = key === 'push' ? '' : linear ? `goal <= ${(1.15 * scale).toFixed(2)}x (1.15x linear)` : 'goal <= 1.2x'
    const met = key === 'push' ? '' : (linear ? ratio <= 1.15 * scale : ratio <= 1.2) ? 'met' : 'not met'
    const memory = row.maxRssMb === null ? '' : `, peak ${row.maxRssMb.toFixed(0)} MB (goal < 300 MB: ${row.maxRssMb < 300 ? 'met' : 'not met'})`
    row.target = goal
    row.note = `${ratio.toFixed(2)}x the bench database's time${linear ? ` (${(ratio / scale).toFixed(2)}x linear)` : ''}${met ? `: ${met}` : ''}`
    console.log(`  ${key}: ${row.note}${memory}`)
  }
}

/** Push, incremental push and clone against s3rver on 127.0.0.1, with rclone on the same data. */
async function s3Cases(benchFile: string, onePercent: number): Promise<void> {
  const dir = fresh(path.join(work, 's3rver'))
  const child = spawn(process.execPath, ['--openssl-legacy-provider', path.join(repoRoot, 'dist', 'src', 'bench', 's3-server-process.js'), dir, 'bench'], {stdio: ['ignore', 'pipe', 'inherit']})
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))
    child.once('exit', () => reject(new Error('s3rver exited')))
  })
  const s3env = {...env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', TILESYNC_JOBS: '16'}
  const t = (cwd: string, ...args: string[]): Sample => measure(process.execPath, [BIN, ...args], {cwd, env: s3env})
  const s3Runs = Math.min(runs, 3)
  const project = path.join(work, 's3-project')
  const dbFile = path.join(project, 'generations/v01/quadrants.db')
  const tiles = path.join(work, 's3-tiles')
  try {
    fresh(project)
    fs.mkdirSync(path.dirname(dbFile), {recursive: true})
    fs.copyFileSync(benchFile, dbFile)
    run(process.execPath, [BIN, 'init'], project, env)
    run(process.execPath, [BIN, 'commit', '-m', 'first'], project, env)
    const first: Sample[] = []
    const inc: Sample[] = []
    const clones: Sample[] = []
    for (let i = 0; i < s3Runs; i++) {
      run(process.execPath, [BIN, 'remote', 'add', `s3run${i}`, `s3://bench/run-${i}`, '--endpoint', endpoint], project, s3env)
      first.push(t(project, 'push', `s3run${i}`, 'main'))
    }
    for (let i = 0; i < s3Runs; i++) {
      changeTiles(dbFile, null, onePercent, 100 + i)
      run(process.execPath, [BIN, 'commit', '-m', `s3 round ${i}`], project, env)
      inc.push(t(project, 'push', 's3run0', 'main'))
    }
    const f = record(`S3 push, first (${(fs.statSync(benchFile).size / 1e9).toFixed(2)} GB)`, 'tilesync', first)
    const p = record(`S3 push after 1% (${onePercent} tiles)`, 'tilesync', inc)
    const cloneOnce = (): void => {
      const target = path.join(work, 's3-clone')
      fs.rmSync(target, {recursive: true, force: true})
      run('sync', [], work)
      clones.push(t(work, 'clone', 's3://bench/run-0', target, '--endpoint', endpoint))
    }
    if (!has('rclone')) {
      for (let i = 0; i < s3Runs; i++) cloneOnce()
      record('S3 clone', 'tilesync', clones)
    } else {
      exportTiles(benchFile, tiles)
      const renv = {
        RCLONE_CONFIG_BS_TYPE: 's3', RCLONE_CONFIG_BS_PROVIDER: 'Other', RCLONE_CONFIG_BS_ENDPOINT: endpoint,
        RCLONE_CONFIG_BS_ACCESS_KEY_ID: 'S3RVER', RCLONE_CONFIG_BS_SECRET_ACCESS_KEY: 'S3RVER', RCLONE_CONFIG_BS_FORCE_PATH_STYLE: 'true', AWS_CA_BUNDLE: undefined,
      }
      const rc: Sample[] = []
      const rs: Sample[] = []
      for (let i = 0; i < s3Runs; i++) rc.push(measure('rclone', ['copy', '--transfers', '16', tiles, `bs:bench/rclone-${i}`], {cwd: work, env: renv}))
      for (let i = 0; i < s3Runs; i++) {
        changeTiles(dbFile, tiles, onePercent, 200 + i)
        rs.push(measure('rclone', ['sync', '--checksum', '--transfers', '16', tiles, 'bs:bench/rclone-0'], {cwd: work, env: renv}))
      }
      const rcr = record(`S3 push, first (${(fs.statSync(benchFile).size / 1e9).toFixed(2)} GB)`, 'rclone copy', rc)
      const rsr = record(`S3 push after 1% (${onePercent} tiles)`, 'rclone sync --checksum', rs)
      console.log(`  ratio first push tilesync / rclone: ${(f.medianSeconds / rcr.medianSeconds).toFixed(2)}`)
      console.log(`  ratio 1% push tilesync / rclone: ${(p.medianSeconds / rsr.medianSeconds).toFixed(2)}`)
      // The clone against rclone downloading the same tiles from the same server, in turns.
      const rd: Sample[] = []
      const downloaded = path.join(work, 's3-rclone-download')
      for (let i = 0; i < s3Runs; i++) {
        cloneOnce()
        fs.rmSync(downloaded, {recursive: true, force: true})
        run('sync', [], work)
        rd.push(measure('rclone', ['copy', '--transfers', '16', 'bs:bench/rclone-0', downloaded], {cwd: work, env: renv}))
      }
      fs.rmSync(downloaded, {recursive: true, force: true})
      const c = record('S3 clone', 'tilesync', clones, {target: '<= 1.5x rclone copy (download)'})
      const r = record('S3 clone', 'rclone copy (download)', rd)
      console.log(`  ratio S3 clone tilesync / rclone download: ${(c.medianSeconds / r.medianSeconds).toFixed(2)}`)
    }
  } finally {
    child.kill()
  }
}

await main()
