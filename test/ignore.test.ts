import {expect} from 'chai'
import {spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {checkout} from '../src/ops/checkout.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {ignore, unignore} from '../src/ops/ignore.js'
import {initRepository} from '../src/ops/init.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {REPO_ROOT, cli, cliJson} from './support/cli.js'
import {DB_REL, makeProject, png, tmpDir, withDb} from './support/fixtures.js'

const author = {name: 'T', email: 't@x'}

/** Every write to generation_queue, by anyone, lands here (the test's own instrument). */
const AUDIT_SQL = `
CREATE TABLE queue_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, item INTEGER, marker TEXT);
CREATE TRIGGER queue_audit_ins AFTER INSERT ON generation_queue BEGIN INSERT INTO queue_audit (op, item, marker) VALUES ('I', NEW.id, NEW.result_message); END;
CREATE TRIGGER queue_audit_upd AFTER UPDATE ON generation_queue BEGIN INSERT INTO queue_audit (op, item, marker) VALUES ('U', NEW.id, NEW.result_message); END;
CREATE TRIGGER queue_audit_del AFTER DELETE ON generation_queue BEGIN INSERT INTO queue_audit (op, item, marker) VALUES ('D', OLD.id, OLD.result_message); END;
`

interface WriterReport {
  writes: number
  times: number[]
  rows: unknown[][]
}

/** The pipeline's queue worker as a real second process (Python's sqlite3, as the app uses). */
function startQueueWriter(db: string): {stop: () => Promise<WriterReport>} {
  const stopFile = path.join(path.dirname(db), `stop-${process.pid}-${Date.now()}`)
  const child = spawn('python3', [path.join(REPO_ROOT, 'test', 'support', 'queue_writer.py'), db, stopFile], {stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { err += d })
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)))
  return {
    stop: async () => {
      fs.writeFileSync(stopFile, '')
      const code = await exited
      if (code !== 0) throw new Error(`queue writer exited ${code}: ${err}`)
      return JSON.parse(out) as WriterReport
    },
  }
}

const auditCount = (db: string): number => withDb(db, (d) => (d.prepare('SELECT count(*) AS n FROM queue_audit').get() as {n: number}).n)

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * tilesync's objects that record keys. Tables the record does not hold (ignored ones) carry
 * triggers that only count their writes (so the file change counter moving has a cause);
 * those record nothing and are left out here.
 */
function ownObjects(db: string): Array<{name: string; tbl: string}> {
  return withDb(db, (d) => d.prepare(`SELECT name, tbl_name AS tbl FROM sqlite_master WHERE substr(name, 1, 9) = '_tilesync' AND NOT (type = 'trigger' AND sql NOT LIKE '%INSERT INTO _tilesync_changes %')`).all() as Array<{name: string; tbl: string}>)
}

describe('ignored tables: a live work queue beside the tiles', () => {
  it('status, commit and checkout never read or write the queue while a real second process keeps updating it; a clone creates it empty', async function () {
    this.timeout(180_000)
    const {dir, db} = makeProject({width: 8, height: 6, queueItems: 12})
    withDb(db, (d) => d.exec(AUDIT_SQL))
    const init = await initRepository({dir, ignore: ['queue_audit']})
    // The queue is recognised and left out by default; the audit table was named.
    expect(init.proposed.map((p) => p.table)).to.deep.equal(['generation_queue'])
    expect(init.proposed[0].reasons.join(' ')).to.match(/AUTOINCREMENT/)
    expect(init.ignored).to.deep.equal(['generation_queue', 'queue_audit'])
    expect(init.tables).to.deep.equal(['metadata', 'quadrants'])
    const ws = await Workspace.open(dir)
    const base = await commit(ws, {message: 'base', author})
    expect(base.summary.rowsChanged).to.equal(6 * 8 + 2)
    // A layer the app adds at run time, before the writer starts.
    withDb(db, (d) => {
      d.exec('ALTER TABLE quadrants ADD COLUMN dark_mode BLOB')
      d.prepare('UPDATE quadrants SET dark_mode = ? WHERE quadrant_x = 1 AND quadrant_y = 1').run(png(900))
    })
    const layered = await commit(ws, {message: 'dark mode', author})
    expect(layered.summary).to.deep.include({tilesModified: 1, rowsChanged: 1})
    // No trigger of tilesync's on the ignored tables.
    expect(ownObjects(db).filter((o) => o.tbl === 'generation_queue' || o.tbl === 'queue_audit')).to.deep.equal([])

    const writer = startQueueWriter(db)
    let report: WriterReport
    const window: {start: number; end: number} = {start: 0, end: 0}
    try {
      await until(() => auditCount(db) >= 15, 'the writer to start')
      window.start = Date.now() / 1000
      const st = await status(ws)
      expect(st.clean, JSON.stringify(st.changes.tables)).to.equal(true)
      expect(st.scan.incremental, st.scan.reason).to.equal(true)
      expect(st.ignored.entries).to.deep.equal(['generation_queue', 'queue_audit'])
      withDb(db, (d) => d.prepare('UPDATE quadrants SET notes = ? WHERE quadrant_x = 0 AND quadrant_y = 0').run('while the queue runs'))
      const during = await commit(ws, {message: 'during the queue', author})
      expect(during.committed).to.equal(true)
      expect(during.summary).to.deep.include({tilesModified: 1, rowsChanged: 1})
      const state = await ws.stateOf(during.id)
      expect([...state.tables.keys()].sort()).to.deep.equal(['metadata', 'quadrants'])
      // The queue changed all along: the database is still clean, so no --force is needed.
      const back = await checkout(ws, {revision: 'HEAD~2'})
      expect(back.savedAs).to.equal(null)
      expect(withDb(db, (d) => (d.prepare(`SELECT name FROM pragma_table_info('quadrants')`).all() as Array<{name: string}>).map((c) => c.name))).to.not.include('dark_mode')
      await until(() => auditCount(db) >= 30, 'more queue writes')
      const forward = await checkout(ws, {revision: 'main'})
      expect(forward.savedAs).to.equal(null)
      window.end = Date.now() / 1000
      await until(() => auditCount(db) >= 45, 'queue writes after the checkout')
    } finally {
      report = await writer.stop()
    }
    expect(report.writes).to.be.greaterThan(40)
    // The writer ran while tilesync did.
    expect(report.times.filter((t) => t > window.start && t < window.end).length).to.be.greaterThan(0)

    // Not one queue row was written by anyone but the writer: every audit row is one of its
    // writes, each exactly once, in its order; nothing deleted; the triggers still there.
    const audit = withDb(db, (d) => d.prepare('SELECT op, marker FROM queue_audit ORDER BY seq').raw(true).all() as Array<[string, string | null]>)
    const fromWriter = audit.filter(([, m]) => m !== null && /^w\d+$/.test(m))
    expect(fromWriter.map(([, m]) => m)).to.deep.equal(Array.from({length: report.writes}, (_, i) => `w${i + 1}`))
    expect(audit.length).to.equal(report.writes)
    expect(audit.every(([op]) => op === 'I' || op === 'U')).to.equal(true)
    const queue = withDb(db, (d) => d.prepare('SELECT id, item_type, quadrants, model_id, status, created_at, started_at, completed_at, result_message FROM generation_queue ORDER BY id').raw(true).all())
    expect(queue).to.deep.equal(report.rows)
    expect(withDb(db, (d) => (d.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'generation_queue' AND substr(name, 1, 9) != '_tilesync' ORDER BY name`).all() as Array<{name: string}>).map((r) => r.name)))
      .to.deep.equal(['queue_audit_del', 'queue_audit_ins', 'queue_audit_upd'])
    // Nothing of the queue's was recorded by change tracking.
    expect(withDb(db, (d) => (d.prepare(`SELECT count(*) AS n FROM _tilesync_changes WHERE tbl IN ('generation_queue', 'queue_audit')`).get() as {n: number}).n)).to.equal(0)
    expect((await status(ws, {rescan: true})).clean).to.equal(true)

    // A clone creates the ignored tables empty, with their schema (indexes, triggers), and keeps ignoring them.
    const remote = path.join(tmpDir('remote'), 'r')
    await addRemote(ws.repo, 'origin', remote)
    await push(ws, {remote: 'origin'})
    const target = path.join(tmpDir('clone'), 'c')
    await clone({url: remote, dir: target})
    const cloned = path.join(target, DB_REL)
    const schemaOf = (file: string): unknown => withDb(file, (d) => d.prepare(`SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ('generation_queue', 'queue_audit') AND name NOT LIKE 'sqlite_%' ORDER BY type, name`).raw(true).all())
    expect(schemaOf(cloned)).to.deep.equal(schemaOf(db))
    expect(withDb(cloned, (d) => (d.prepare('SELECT count(*) AS n FROM generation_queue').get() as {n: number}).n)).to.equal(0)
    expect(withDb(cloned, (d) => (d.prepare('SELECT count(*) AS n FROM queue_audit').get() as {n: number}).n)).to.equal(0)
    const cws = await Workspace.open(target)
    expect(cws.repo.config.ignore).to.deep.equal(['generation_queue', 'queue_audit'])
    expect(ownObjects(cloned).filter((o) => o.tbl === 'generation_queue')).to.deep.equal([])
    // The app starts and queues work in the clone: still clean.
    withDb(cloned, (d) => d.prepare(`INSERT INTO generation_queue (item_type, quadrants, status, created_at) VALUES ('generation', '[[0,0]]', 'pending', 1)`).run())
    expect((await status(cws)).clean).to.equal(true)
  })

  it('ignore, unignore and init --ignore: recorded in config.json, listed by status, triggers removed at once, bad entries refused', async () => {
    const {dir, db} = makeProject({queueItems: 5, runtimeColumns: ['flagged', 'starred']})
    const r = cli(dir, ['init', '--no-auto-ignore'])
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout).to.not.contain('ignored')
    expect(cli(dir, ['commit', '-m', 'all versioned']).code).to.equal(0)
    expect(ownObjects(db).map((o) => o.name)).to.include('_tilesync_generation_queue_upd')

    const ig = cli(dir, ['ignore', 'generation_queue', 'quadrants.flagged'])
    expect(ig.code, ig.stderr).to.equal(0)
    expect(ig.stdout).to.contain('Left out of versioning: generation_queue, quadrants.flagged')
    expect(JSON.parse(fs.readFileSync(path.join(dir, '.tilesync', 'config.json'), 'utf8')).ignore).to.deep.equal(['generation_queue', 'quadrants.flagged'])
    expect(ownObjects(db).filter((o) => o.tbl === 'generation_queue')).to.deep.equal([])
    // The app keeps writing both; neither shows, and nothing is recorded for the queue.
    withDb(db, (d) => {
      d.prepare(`UPDATE generation_queue SET status = 'done'`).run()
      d.prepare('UPDATE quadrants SET flagged = 1 WHERE quadrant_x = 0').run()
    })
    const st = cli(dir, ['status'])
    expect(st.stdout).to.contain('Nothing to commit')
    expect(st.stdout).to.contain('Ignored (not versioned): generation_queue, quadrants.flagged')
    expect(cliJson<{ignored: {entries: string[]}}>(dir, ['status']).ignored.entries).to.deep.equal(['generation_queue', 'quadrants.flagged'])
    expect(cli(dir, ['commit', '-m', 'nothing']).stdout).to.contain('Nothing to commit')
    expect(withDb(db, (d) => (d.prepare(`SELECT count(*) AS n FROM _tilesync_changes WHERE tbl = 'generation_queue'`).get() as {n: number}).n)).to.equal(0)
    // A checkout of the commit that versioned both rolls back neither.
    withDb(db, (d) => d.prepare('UPDATE quadrants SET notes = ? WHERE quadrant_x = 1 AND quadrant_y = 1').run('x'))
    expect(cli(dir, ['commit', '-m', 'notes']).code).to.equal(0)
    const co = cli(dir, ['checkout', 'HEAD~1'])
    expect(co.code, co.stderr).to.equal(0)
    expect(withDb(db, (d) => (d.prepare(`SELECT count(*) AS n FROM generation_queue WHERE status != 'done'`).get() as {n: number}).n)).to.equal(0)
    expect(withDb(db, (d) => (d.prepare('SELECT count(*) AS n FROM quadrants WHERE quadrant_x = 0 AND flagged = 1').get() as {n: number}).n)).to.equal(5)
    expect(cli(dir, ['checkout', 'main']).code).to.equal(0)

    const list = cliJson<{entries: string[]; tables: Array<{table: string; present: boolean}>}>(dir, ['ignore'])
    expect(list.entries).to.deep.equal(['generation_queue', 'quadrants.flagged'])
    expect(list.tables).to.deep.equal([{table: 'generation_queue', present: true}])

    // Refused: the tile table, a key column, a generated column, a malformed entry; nothing changes.
    for (const [args, match] of [
      [['quadrants'], /tile table/], [['quadrants.quadrant_x'], /identifies the table's rows/],
      [['quadrants.is_generated'], /generated column/], [['quadrants.'], /TABLE or TABLE.COLUMN/],
    ] as Array<[string[], RegExp]>) {
      const bad = cli(dir, ['ignore', ...args])
      expect(bad.code).to.equal(1)
      expect(bad.stderr).to.match(match)
      expect(bad.stderr.trim().split('\n')).to.have.length(1)
    }
    expect(JSON.parse(fs.readFileSync(path.join(dir, '.tilesync', 'config.json'), 'utf8')).ignore).to.deep.equal(['generation_queue', 'quadrants.flagged'])
    // A name the app has not created yet is accepted, with a note.
    expect(cli(dir, ['ignore', 'quadrants.dark_mode']).stdout).to.contain('has no column dark_mode (yet)')

    const un = cli(dir, ['unignore', 'generation_queue'])
    expect(un.code, un.stderr).to.equal(0)
    expect(un.stdout).to.contain('Versioned again: generation_queue')
    expect(cli(dir, ['unignore', 'nothing_here']).stderr).to.contain('not ignored')
    // Versioned again, the queue's current rows are what the next commit records.
    const ws = await Workspace.open(dir)
    const after = await status(ws)
    const q = after.changes.tables.find((t) => t.table === 'generation_queue')!
    expect(q.added).to.equal(5)
    await commit(ws, {message: 'queue versioned again', author})
    expect(ownObjects(db).map((o) => o.name)).to.include('_tilesync_generation_queue_upd')
    await unignore(ws, ['quadrants.flagged', 'quadrants.dark_mode'])
    expect(ws.repo.config.ignore).to.deep.equal([])
    await ignore(ws, ['generation_queue'])
    expect(ownObjects(db).filter((o) => o.tbl === 'generation_queue')).to.deep.equal([])

    const fresh = makeProject({queueItems: 3})
    const i2 = cli(fresh.dir, ['init', '--ignore', 'metadata'])
    expect(i2.code, i2.stderr).to.equal(0)
    expect(i2.stdout).to.contain('ignored:   generation_queue, metadata')
    expect(i2.stdout).to.contain('to version it: tilesync unignore generation_queue')
    const bad = cli(makeProject().dir, ['init', '--ignore', 'quadrants'])
    expect(bad.code).to.equal(1)
    expect(bad.stderr).to.match(/tile table/)
  })

  it('an ignored column or queue column the app adds later changes nothing: the record stays trusted, status clean, checkout rebuilds nothing', async () => {
    const {dir, db} = makeProject({width: 6, height: 5, queueItems: 4})
    await initRepository({dir, ignore: ['quadrants.water_type']})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'base', author})
    withDb(db, (d) => d.prepare('UPDATE quadrants SET notes = ? WHERE quadrant_x = 0 AND quadrant_y = 0').run('second'))
    await commit(ws, {message: 'second', author})
    // The app adds its columns: one to the ignored queue, one ignored column to the tile table.
    withDb(db, (d) => {
      d.exec('ALTER TABLE generation_queue ADD COLUMN priority INTEGER DEFAULT 0')
      d.exec('ALTER TABLE quadrants ADD COLUMN water_type TEXT')
      d.prepare(`UPDATE quadrants SET water_type = 'ALL_WATER' WHERE quadrant_y = 1`).run()
    })
    const st = await status(ws)
    expect(st.clean, JSON.stringify(st.changes)).to.equal(true)
    expect(st.scan.incremental, st.scan.reason).to.equal(true)
    const water = (): unknown => withDb(db, (d) => d.prepare('SELECT quadrant_x, quadrant_y, water_type FROM quadrants ORDER BY 1, 2').raw(true).all())
    const before = water()
    const r = await checkout(ws, {revision: 'HEAD~1'})
    // One row differs (notes of 0,0): that is all a checkout writes; no rebuild for the new column.
    expect([r.rowsWritten, r.rowsDeleted]).to.deep.equal([1, 0])
    expect(water()).to.deep.equal(before)
    expect(withDb(db, (d) => (d.prepare(`SELECT sql FROM sqlite_master WHERE name = 'quadrants'`).get() as {sql: string}).sql)).to.contain('water_type TEXT')
    expect(withDb(db, (d) => (d.prepare(`SELECT sql FROM sqlite_master WHERE name = 'generation_queue'`).get() as {sql: string}).sql)).to.contain('priority')
  })

  it('an ignored column is never written by checkout, even when a versioned change rebuilds its table', async () => {
    const dir = tmpDir('rebuild')
    const db = path.join(dir, 'tiles.db')
    withDb(db, (d) => d.exec(`
      CREATE TABLE tiles (x INTEGER NOT NULL, y INTEGER NOT NULL, img BLOB, note TEXT, PRIMARY KEY (x, y));
      ALTER TABLE tiles ADD COLUMN flagged INTEGER DEFAULT 0;
      CREATE INDEX idx_tiles_flagged ON tiles (flagged);
    `))
    withDb(db, (d) => {
      for (let i = 0; i < 6; i++) d.prepare('INSERT INTO tiles (x, y, img, note) VALUES (?, ?, ?, ?)').run(i - 3, -i, png(i), `n${i}`)
    })
    await initRepository({dir, db: 'tiles.db', ignore: ['tiles.flagged']})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'plain note', author})
    // A migration that changes a versioned column's definition: only a rebuild can undo it.
    withDb(db, (d) => d.exec(`
      CREATE TABLE tiles_new (x INTEGER NOT NULL, y INTEGER NOT NULL, img BLOB, note TEXT NOT NULL DEFAULT '', flagged INTEGER DEFAULT 0, PRIMARY KEY (x, y));
      INSERT INTO tiles_new SELECT x, y, img, coalesce(note, ''), flagged FROM tiles;
      DROP TABLE tiles; ALTER TABLE tiles_new RENAME TO tiles;
      CREATE INDEX idx_tiles_flagged ON tiles (flagged);
    `))
    await commit(ws, {message: 'note NOT NULL', author})
    // The app flags tiles (ignored), then the user goes back before the migration.
    withDb(db, (d) => d.prepare('UPDATE tiles SET flagged = x + 10').run())
    const flags = (): unknown => withDb(db, (d) => d.prepare('SELECT x, y, flagged FROM tiles ORDER BY x').raw(true).all())
    const before = flags()
    const r = await checkout(ws, {revision: 'HEAD~1'})
    expect(r.savedAs).to.equal(null)
    expect(withDb(db, (d) => (d.prepare(`SELECT sql FROM sqlite_master WHERE name = 'tiles'`).get() as {sql: string}).sql)).to.match(/note TEXT,/)
    expect(flags()).to.deep.equal(before)
    expect(withDb(db, (d) => d.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'idx_tiles_flagged'`).get())).to.not.equal(undefined)
    expect((await status(ws, {rescan: true})).clean).to.equal(true)
  })
})
