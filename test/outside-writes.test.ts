import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import * as path from 'node:path'

import {checkout} from '../src/ops/checkout.js'
import {commit} from '../src/ops/commit.js'
import {status} from '../src/ops/status.js'
import type {Workspace} from '../src/workspace/workspace.js'
import {cli, REPO_ROOT} from './support/cli.js'
import {author, cloneOf, exactDump, projectWith, query, run} from './support/shapes.js'

/** A real second process writing a tile through SQLite's incremental blob I/O (no trigger fires). */
function blobWrite(db: string, x: number, y: number, hex: string, journalMode?: string): void {
  const rowid = query<{r: number}>(db, `SELECT rowid AS r FROM tiles WHERE x = ? AND y = ?`, x, y)[0].r
  execFileSync('python3', [path.join(REPO_ROOT, 'test', 'support', 'blob-write.py'), db, 'tiles', 'img', String(rowid), hex, ...(journalMode ? [journalMode] : [])])
}

const imgOf = (db: string, x: number, y: number): string => query<{h: string}>(db, `SELECT hex(img) AS h FROM tiles WHERE x = ? AND y = ?`, x, y)[0].h

async function twoCommits(journal = 'DELETE'): Promise<{dir: string; db: string; ws: Workspace}> {
  const p = await projectWith(`PRAGMA journal_mode = ${journal};
    CREATE TABLE tiles (x INTEGER NOT NULL, y INTEGER NOT NULL, img BLOB, note TEXT, PRIMARY KEY (x, y));
    INSERT INTO tiles VALUES (0, 0, x'01020304', 'a'), (1, 0, x'05060708', 'b');`, {table: 'tiles'})
  await commit(p.ws, {message: 'A', author})
  run(p.db, `UPDATE tiles SET img = x'11111111' WHERE x = 0`)
  await commit(p.ws, {message: 'B', author})
  return p
}

describe('writes the change record cannot see (incremental blob I/O)', () => {
  it('checkout refuses to overwrite a tile written through blob I/O, and --force saves it first', async () => {
    const {db, ws} = await twoCommits()
    blobWrite(db, 0, 0, '0a0b0c0d')
    const s = await status(ws)
    expect(s.outsideWrites).to.equal('detected')
    expect((await status(ws, {rescan: true})).changes.tiles.map((t) => t.key)).to.deep.equal(['0,0'])
    let refused: unknown
    await checkout(ws, {revision: 'HEAD~1'}).catch((error: unknown) => {
      refused = error
    })
    expect((refused as {code?: string}).code).to.equal('DIRTY')
    expect(imgOf(db, 0, 0)).to.equal('0A0B0C0D')
    const forced = await checkout(ws, {revision: 'HEAD~1', force: true})
    expect(imgOf(db, 0, 0)).to.equal('01020304')
    const saved = await ws.stateOf(forced.savedAs)
    const rows = []
    for await (const r of ws.reader.rows(saved.tables.get('tiles')!)) rows.push(r)
    const bytes = await ws.repo.store.get((rows.find((r) => r.values[0] === 0)!.values[2] as {id: string}).id)
    expect(bytes.toString('hex')).to.equal('0a0b0c0d')
  })

  it('even when the signal cannot tell (the record also grew), checkout compares the rows it overwrites', async () => {
    const {db, ws} = await twoCommits()
    blobWrite(db, 0, 0, '0a0b0c0d')
    run(db, `UPDATE tiles SET note = 'c' WHERE x = 1`)
    expect((await status(ws)).outsideWrites).to.equal('unknown')
    const r = await checkout(ws, {revision: 'HEAD~1', force: true})
    expect(r.savedAs).to.be.a('string')
    const saved = await ws.stateOf(r.savedAs)
    const blobIds = []
    for await (const row of ws.reader.rows(saved.tables.get('tiles')!)) blobIds.push((row.values[2] as {id: string}).id)
    expect(await Promise.all(blobIds.map(async (id) => (await ws.repo.store.get(id)).toString('hex')))).to.include('0a0b0c0d')
  })

  it('commit reads every row when the file was written outside the record; commit --rescan when that cannot be told', async () => {
    const {db, ws} = await twoCommits()
    blobWrite(db, 0, 0, '0a0b0c0d')
    const c = await commit(ws, {message: 'blob io', author})
    expect(c.committed).to.equal(true)
    expect(c.scan.reason).to.match(/outside the change record/)
    expect(c.summary.tilesModified).to.equal(1)
    expect((await status(ws)).outsideWrites).to.equal('none')

    // Mixed with a recorded write, the signal cannot see it: --rescan can.
    blobWrite(db, 1, 0, 'aabbccdd')
    run(db, `UPDATE tiles SET note = 'z' WHERE x = 0`)
    const mixed = await commit(ws, {message: 'mixed', author})
    expect(mixed.summary.tilesModified).to.equal(1)
    const rescanned = await commit(ws, {message: 'rescan', author, rescan: true})
    expect(rescanned.committed).to.equal(true)
    expect(rescanned.summary.tilesModified).to.equal(1)
    const head = await ws.stateOf(rescanned.id)
    const ids = []
    for await (const row of ws.reader.rows(head.tables.get('tiles')!)) ids.push((row.values[2] as {id: string}).id)
    expect((await ws.repo.store.get(ids[1])).toString('hex')).to.equal('aabbccdd')
    expect((await status(ws, {rescan: true})).clean).to.equal(true)
  })

  it('in WAL mode (no change counter) the signal is unavailable, and checkout still refuses to overwrite', async () => {
    const {db, ws} = await twoCommits('WAL')
    blobWrite(db, 0, 0, '0a0b0c0d', 'WAL')
    expect((await status(ws)).outsideWrites).to.equal('unavailable')
    let code: string | undefined
    await checkout(ws, {revision: 'HEAD~1'}).catch((error: {code?: string}) => {
      code = error.code
    })
    expect(code).to.equal('DIRTY')
    expect(imgOf(db, 0, 0)).to.equal('0A0B0C0D')
  })

  it('tilesync itself never raises the signal: after commit, checkout (full and of one tile) and clone it stays quiet', async () => {
    const {db, ws} = await twoCommits()
    expect((await status(ws)).outsideWrites).to.equal('none')
    await checkout(ws, {revision: 'HEAD~1'})
    expect((await status(ws)).outsideWrites).to.equal('none')
    await checkout(ws, {revision: 'main'})
    expect((await status(ws)).outsideWrites).to.equal('none')
    await checkout(ws, {revision: 'HEAD~1', tiles: [[0, 0]]})
    expect((await status(ws)).outsideWrites).to.equal('none')
    run(db, `UPDATE tiles SET note = 'q' WHERE x = 1`)
    await commit(ws, {message: 'C', author})
    expect((await status(ws)).outsideWrites).to.equal('none')
    const c = await cloneOf(ws)
    expect(exactDump(c.db)).to.deep.equal(exactDump(db))
    expect((await status(c.ws)).outsideWrites).to.equal('none')
  })

  it('writes to tables the record does not hold (an ignored queue, a table without a primary key) are counted, not taken for blob I/O', async () => {
    const p = await projectWith(`CREATE TABLE tiles (x INTEGER NOT NULL, y INTEGER NOT NULL, img BLOB, note TEXT, PRIMARY KEY (x, y));
      INSERT INTO tiles VALUES (0, 0, x'01020304', 'a'), (1, 0, x'05060708', 'b');
      CREATE TABLE generation_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, status TEXT NOT NULL, created_at REAL NOT NULL, started_at REAL);
      INSERT INTO generation_queue (status, created_at) VALUES ('pending', 1), ('pending', 2), ('done', 3); DELETE FROM generation_queue WHERE id = 3;
      CREATE TABLE notes_log (msg TEXT);`, {table: 'tiles'})
    const {db, ws} = p
    expect(ws.repo.config.ignore).to.deep.equal(['generation_queue'])
    await commit(ws, {message: 'A', author})
    run(db, `UPDATE generation_queue SET status = 'running', started_at = 5 WHERE id = 1; INSERT INTO notes_log VALUES ('x');`)
    const s = await status(ws)
    expect(s.outsideWrites).to.equal('unknown')
    expect(s.scan.incremental).to.equal(true)
    const c = await commit(ws, {message: 'B', author})
    expect(c.scan.incremental, c.scan.reason).to.equal(true)
    expect(c.summary.rowsChanged).to.equal(1)
    // Blob I/O alone is still seen.
    blobWrite(db, 0, 0, '0a0b0c0d')
    expect((await status(ws)).outsideWrites).to.equal('detected')
  })

  it('the CLI: status says the file was written outside the record, commit says it read every row', async () => {
    const {dir, db} = await twoCommits()
    blobWrite(db, 0, 0, '0a0b0c0d')
    const s = cli(dir, ['status'])
    expect(s.code).to.equal(0)
    expect(s.stdout).to.contain('written outside the change record')
    expect(s.stdout).to.contain('--rescan')
    const c = cli(dir, ['commit', '-m', 'blob'])
    expect(c.code, c.stderr).to.equal(0)
    expect(c.stdout).to.contain('Read every row: the database file was written outside the change record')
    expect(c.stdout).to.match(/1 modified/)
  })
})
