/**
 * `npm run demo`: the whole tilesync workflow on a sample tile database with real PNGs and a
 * local-directory remote, using the real CLI, so a newcomer sees exactly what they would type.
 * Everything happens under ./demo-output (recreated on each run); no account or network needed.
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import Database from 'better-sqlite3'

import {generateDatabase} from '../sample/generate-database.js'
import {makeTilePng} from '../sample/tile-png.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = path.join(repoRoot, 'bin', 'run.js')
const out = path.resolve(process.argv[2] ?? path.join(repoRoot, 'demo-output'))
const project = path.join(out, 'city')
const remote = path.join(out, 'remote')
const cloneDir = path.join(out, 'city-clone')
const dbRel = 'generations/v01/quadrants.db'

function tilesync(cwd: string, ...args: string[]): string {
  console.log(`\n$ tilesync ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`)
  const text = execFileSync(process.execPath, [bin, ...args], {cwd, encoding: 'utf8', env: {...process.env, TILESYNC_AUTHOR_NAME: 'Demo', TILESYNC_AUTHOR_EMAIL: 'demo@example.com'}})
  process.stdout.write(text)
  return text
}

/**
 * A fingerprint of every row of every versioned table (not tilesync's own, not the ignored
 * work queue), by column name, to show two databases hold the same data.
 */
function fingerprint(file: string, ignored: string[]): string {
  const db = new Database(file, {readonly: true})
  const h = createHash('sha256')
  const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT IN ('_tilesync_changes', '_tilesync_state') ORDER BY name`).all() as Array<{name: string}>)
    .filter(({name}) => !ignored.includes(name))
  for (const {name} of tables) {
    // By name, in name order: the clone may hold the columns the app added in another order.
    const byCid = (db.prepare('SELECT name FROM pragma_table_xinfo(?) ORDER BY cid').all(name) as Array<{name: string}>).map((c) => `"${c.name}"`)
    const cols = [...byCid].sort()
    for (const row of db.prepare(`SELECT ${cols.join(', ')} FROM "${name}" ORDER BY ${byCid.slice(0, 2).join(', ')}`).raw(true).iterate() as Iterable<unknown[]>) {
      h.update(name)
      for (const v of row) h.update(Buffer.isBuffer(v) ? v : Buffer.from(`${typeof v}:${String(v)}`))
    }
  }
  db.close()
  return h.digest('hex').slice(0, 16)
}

/** The work queue's rows, to show a checkout leaves them alone. */
function queueFingerprint(file: string): string {
  const db = new Database(file, {readonly: true})
  const rows = db.prepare('SELECT * FROM generation_queue ORDER BY id').raw(true).all()
  db.close()
  return `${rows.length} items, ${createHash('sha256').update(JSON.stringify(rows)).digest('hex').slice(0, 12)}`
}

const ignoredOf = (dir: string): string[] => (JSON.parse(fs.readFileSync(path.join(dir, '.tilesync', 'config.json'), 'utf8')) as {ignore?: string[]}).ignore ?? []

fs.rmSync(out, {recursive: true, force: true})
fs.mkdirSync(project, {recursive: true})
console.log(`Building a sample generations database in ${path.join(project, dbRel)} ...`)
// The shape the pipeline really leaves: its work queue in the same file, columns it added at
// run time (flags, water classification, a water_mask image layer), negative coordinates.
const made = generateDatabase(path.join(project, dbRel), {
  width: 12, height: 8, imageSize: 128, generationRatio: 0.6, noise: 0.2, queueItems: 24,
  runtimeColumns: ['flagged', 'starred', 'water_type', 'is_water', 'water_mask', 'is_reference'], layerRatio: 0.2,
})
console.log(`  ${made.quadrants} quadrants, ${made.images} PNG images, ${(made.bytes / 1024 / 1024).toFixed(1)} MiB, a generation_queue table`)

tilesync(project, 'init')
tilesync(project, 'commit', '-m', 'first snapshot of the city')

// What this block says must be what it does: test/demo.test.ts checks each claim against `status`.
console.log('\n# The pipeline regenerates two tiles, re-renders a third (with a note), takes the generation')
console.log('# off a fourth and bumps metadata.schema_version; its queue moves on (ignored, not shown);')
console.log('# the app adds a dark_mode image layer and fills it for two tiles:')
const db = new Database(path.join(project, dbRel))
db.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = 0 AND quadrant_y = 0').run(makeTilePng(128, 1001, 0.2))
db.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = 3 AND quadrant_y = -2').run(makeTilePng(128, 1002, 0.2))
db.prepare('UPDATE quadrants SET render = ?, notes = ? WHERE quadrant_x = -4 AND quadrant_y = 1').run(makeTilePng(128, 1003, 0.2), 're-rendered')
db.prepare('UPDATE quadrants SET generation = NULL WHERE quadrant_x = 5 AND quadrant_y = 3').run()
db.prepare(`UPDATE metadata SET value = '4' WHERE key = 'schema_version'`).run()
db.prepare(`UPDATE generation_queue SET status = 'done', completed_at = 1733300999.5 WHERE status IN ('pending', 'running')`).run()
db.exec('ALTER TABLE quadrants ADD COLUMN dark_mode BLOB')
db.prepare('UPDATE quadrants SET dark_mode = ? WHERE quadrant_x = 1 AND quadrant_y = -1').run(makeTilePng(128, 1004, 0.2))
db.prepare('UPDATE quadrants SET dark_mode = ? WHERE quadrant_x = -2 AND quadrant_y = -3').run(makeTilePng(128, 1005, 0.2))
db.close()

tilesync(project, 'status')
tilesync(project, 'commit', '-m', 'night run: 2 tiles regenerated, 1 re-rendered, dark mode started')
tilesync(project, 'diff', 'HEAD~1', 'HEAD')
tilesync(project, 'log', '--oneline')
const queueBefore = queueFingerprint(path.join(project, dbRel))
tilesync(project, 'checkout', 'HEAD~1')
tilesync(project, 'checkout', 'main')
const queueAfter = queueFingerprint(path.join(project, dbRel))
console.log(`\nwork queue before the checkouts: ${queueBefore}`)
console.log(`work queue after the checkouts:  ${queueAfter}`)
if (queueBefore !== queueAfter) {
  console.error('A checkout changed the ignored work queue.')
  process.exit(1)
}

console.log('\n# Setting an image to NULL takes that layer off the tile (the tile stays):')
const db2 = new Database(path.join(project, dbRel))
db2.prepare('UPDATE quadrants SET dark_mode = NULL WHERE quadrant_x = 1 AND quadrant_y = -1').run()
db2.close()
tilesync(project, 'diff')
tilesync(project, 'commit', '-m', 'no dark mode for 1,-1 yet')
tilesync(project, 'log', '--stat', '-n', '2')
const latest = fingerprint(path.join(project, dbRel), ignoredOf(project))
tilesync(project, 'show', 'HEAD', '--tile', '0,0', '--layer', 'generation', '-o', path.join(out, 'tile-0-0.png'))

tilesync(project, 'remote', 'add', 'origin', remote)
tilesync(project, 'push', 'origin')
tilesync(out, 'clone', remote, cloneDir)
tilesync(cloneDir, 'status')

const original = fingerprint(path.join(project, dbRel), ignoredOf(project))
const cloned = fingerprint(path.join(cloneDir, dbRel), ignoredOf(cloneDir))
console.log(`\noriginal database fingerprint: ${original}`)
console.log(`cloned database fingerprint:   ${cloned}`)
console.log(`cloned work queue:             ${queueFingerprint(path.join(cloneDir, dbRel))} (ignored: created empty, so the app starts)`)
if (original !== cloned || original !== latest) {
  console.error('The clone differs from the original.')
  process.exit(1)
}
console.log(`The clone equals the original in every versioned table (the ignored queue is not cloned). Everything is in ${out}.`)
