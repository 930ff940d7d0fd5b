import {expect} from 'chai'
import {execFileSync} from 'node:child_process'

import {prng} from '../src/sample/tile-png.js'
import {checkout} from '../src/ops/checkout.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {status, type StatusResult} from '../src/ops/status.js'
import {setTracking, trackingInfo} from '../src/ops/tracking.js'
import {Workspace} from '../src/workspace/workspace.js'
import {makeProject, png, withDb} from './support/fixtures.js'

const author = {name: 'T', email: 't@x'}

function summary(s: StatusResult): unknown {
  return {tables: s.changes.tables.map((t) => ({...t, rows: t.rows.map((r) => JSON.stringify(r))})), schema: s.changes.schemaChanged}
}

async function expectTrackedEqualsRescan(ws: Workspace, expectIncremental = true): Promise<StatusResult> {
  const tracked = await status(ws)
  const full = await status(ws, {rescan: true})
  expect(full.scan.incremental).to.equal(false)
  if (expectIncremental) expect(tracked.scan.incremental, tracked.scan.reason).to.equal(true)
  expect(summary(tracked)).to.deep.equal(summary(full))
  return tracked
}

const sqlite3 = (db: string, sql: string): void => {
  execFileSync('sqlite3', [db], {input: `PRAGMA busy_timeout = 5000;\n${sql}\n`})
}

describe('change tracking', () => {
  it('records writes from any process, and status from the record equals a full rescan (property test)', async function () {
    this.timeout(180_000)
    const {dir, db} = makeProject({width: 8, height: 6})
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'base', author})
    expect((await trackingInfo(ws)).intact).to.equal(true)
    const rand = prng(20240601)
    const pick = (n: number): number => Math.floor(rand() * n)
    const coord = (): [number, number] => [pick(12) - 6, pick(10) - 5]
    let seed = 1000
    for (let step = 0; step < 60; step++) {
      const [x, y] = coord()
      const blob = png(seed++)
      const hex = blob.toString('hex')
      switch (pick(9)) {
        case 0: withDb(db, (d) => d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(blob, x, y)); break
        case 1: withDb(db, (d) => d.prepare('UPDATE quadrants SET generation = NULL, notes = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(`n${step}`, x, y)); break
        case 2: withDb(db, (d) => d.prepare('DELETE FROM quadrants WHERE quadrant_x = ? AND quadrant_y = ?').run(x, y)); break
        case 3: withDb(db, (d) => d.prepare(`INSERT OR REPLACE INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, render) VALUES (?, ?, 1.5, 2.5, 0, 0, 0, ?)`).run(x, y, blob)); break
        case 4: sqlite3(db, `INSERT OR REPLACE INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, generation) VALUES (${x}, ${y}, 3, 4, 1, 1, 1, X'${hex}');`); break
        case 5: sqlite3(db, `UPDATE quadrants SET render = X'${hex}', lat = lat + 0.5 WHERE quadrant_x = ${x} AND quadrant_y = ${y};`); break
        case 6: sqlite3(db, `DELETE FROM quadrants WHERE quadrant_x = ${x} AND quadrant_y = ${y}; UPDATE metadata SET value = '${step}' WHERE key = 'schema_version';`); break
        case 7: {
          // A bulk insert in one transaction, and a key change that moves a row to another tile.
          const [nx, ny] = [pick(30) + 20, pick(30) + 20]
          withDb(db, (d) => d.transaction(() => {
            for (let i = 0; i < 5; i++) d.prepare(`INSERT OR IGNORE INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index) VALUES (?, ?, 0, 0, 0, 0, 0)`).run(nx + i, ny)
            d.prepare('UPDATE OR IGNORE quadrants SET quadrant_x = ?, quadrant_y = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(nx - 40, ny - 40, x, y)
          })())
          break
        }
        default: withDb(db, (d) => d.prepare(`INSERT OR REPLACE INTO metadata (key, value) VALUES (?, ?)`).run(`k${pick(5)}`, `v${step}`))
      }
      if (step % 3 === 2) await expectTrackedEqualsRescan(ws)
      if (step % 10 === 9) await commit(ws, {message: `step ${step}`, author})
      if (step % 20 === 19) {
        await checkout(ws, {revision: 'HEAD~1', force: true})
        await expectTrackedEqualsRescan(ws)
        await checkout(ws, {revision: 'main', force: true})
      }
    }
  })

  it('falls back to a full read after a schema migration, and picks up again after the next commit', async () => {
    const {dir, db} = makeProject()
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'base', author})
    sqlite3(db, `ALTER TABLE quadrants ADD COLUMN score REAL; UPDATE quadrants SET score = 0.5 WHERE quadrant_x = 0;`)
    const s = await status(ws)
    expect(s.scan.incremental).to.equal(false)
    expect(s.scan.reason).to.contain('schema')
    expect(s.changes.schemaChanged).to.equal(true)
    await commit(ws, {message: 'migrated', author})
    withDb(db, (d) => d.prepare('UPDATE quadrants SET score = 1 WHERE quadrant_x = 1 AND quadrant_y = 1').run())
    const after = await expectTrackedEqualsRescan(ws)
    expect(after.changes.tiles.map((t) => [t.key, t.columns])).to.deep.equal([['1,1', ['score']]])
  })

  it('never trusts a record whose triggers were dropped; tracking off removes every trace and on restores it', async () => {
    const {dir, db} = makeProject()
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'base', author})
    sqlite3(db, `DROP TRIGGER _tilesync_quadrants_upd; UPDATE quadrants SET notes = 'sneaky' WHERE quadrant_x = 2 AND quadrant_y = 2;`)
    const s = await status(ws)
    expect(s.scan.incremental).to.equal(false)
    expect(s.changes.tiles.map((t) => t.key)).to.deep.equal(['2,2'])
    await setTracking(ws, false)
    const names = withDb(db, (d) => (d.prepare(`SELECT name FROM sqlite_master WHERE name LIKE '%tilesync%'`).all() as Array<{name: string}>).map((r) => r.name))
    expect(names).to.deep.equal([])
    await commit(ws, {message: 'untracked', author})
    expect((await trackingInfo(ws)).installed).to.equal(false)
    await setTracking(ws, true)
    await commit(ws, {message: 'tracked again', author})
    withDb(db, (d) => d.prepare('UPDATE quadrants SET notes = ? WHERE quadrant_x = 0 AND quadrant_y = 0').run('x'))
    await expectTrackedEqualsRescan(ws)
  })

  it('a commit is one consistent moment while another process keeps writing; later writes show in the next status', async function () {
    this.timeout(60_000)
    const {dir, db} = makeProject({width: 10, height: 10})
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'base', author})
    withDb(db, (d) => d.pragma('journal_mode = WAL'))
    const writer = new Promise<void>((resolve) => {
      let i = 0
      const tick = (): void => {
        withDb(db, (d) => d.prepare('UPDATE quadrants SET notes = ? WHERE quadrant_x = ? AND quadrant_y = 0').run(`w${i}`, (i % 10) - 5))
        if (++i < 40) setTimeout(tick, 2)
        else resolve()
      }
      tick()
    })
    const during = await commit(ws, {message: 'during writes', author})
    await writer
    // The commit must equal the database after exactly k writes, for some k.
    const state = await ws.stateOf(during.id)
    const notes = new Map<number, string | null>()
    for await (const row of ws.reader.rows(state.tables.get('quadrants')!)) {
      if (row.values[1] === 0) notes.set(Number(row.values[0]), row.values[10] as string | null)
    }
    const seen = [...notes.values()].filter((n): n is string => n?.startsWith('w') ?? false).map((n) => Number(n.slice(1)))
    const k = seen.length ? Math.max(...seen) + 1 : 0
    for (let x = -5; x < 5; x++) {
      const writes = [...Array(k).keys()].filter((i) => (i % 10) - 5 === x)
      if (writes.length) expect(notes.get(x), `tile ${x},0 at k=${k}`).to.equal(`w${writes.at(-1)}`)
    }
    await expectTrackedEqualsRescan(ws)
    await commit(ws, {message: 'after writes', author})
    expect((await status(ws, {rescan: true})).clean).to.equal(true)
  })
})
