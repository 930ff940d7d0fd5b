import {expect} from 'chai'
import Database from 'better-sqlite3'

import {prng} from '../src/sample/tile-png.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {setTracking} from '../src/ops/tracking.js'
import {computeChangeSet, isEmpty} from '../src/snapshot/change-set.js'
import {inTransaction} from '../src/db/transactions.js'
import {Workspace} from '../src/workspace/workspace.js'
import {makeProject, png, withDb} from './support/fixtures.js'

const author = {name: 'T', email: 't@x'}
/** Tiny steps, so that writes land between nearly every pair of rows read. */
const limits = {rows: 3, bytes: 1e12, ms: 1e9}

/**
 * The pipeline, as far as a scan can tell: random writes from another connection, each step a
 * transaction of its own (a pair of tiles written together, rows moved by INSERT OR REPLACE,
 * keys changed, rows deleted and inserted, a table without a primary key).
 */
function randomWriter(file: string, seed: number): {write: (n: number) => void; close: () => void; writes: () => number} {
  const rand = prng(seed)
  const pick = (n: number): number => Math.floor(rand() * n)
  let db: Database.Database | undefined
  let count = 0
  let blobSeed = seed * 1000
  const open = (): Database.Database => (db ??= new Database(file, {timeout: 5000}))
  const one = (): void => {
    const d = open()
    const [x, y] = [pick(10) - 5, pick(8) - 4]
    const blob = png(blobSeed++)
    d.transaction(() => {
      switch (pick(8)) {
        case 0: d.prepare('UPDATE quadrants SET generation = ?, notes = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(blob, `g${count}`, x, y); break
        case 1: d.prepare('DELETE FROM quadrants WHERE quadrant_x = ? AND quadrant_y = ?').run(x, y); break
        case 2: d.prepare(`INSERT OR REPLACE INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, render) VALUES (?, ?, 1.5, 2.5, 0, 0, 0, ?)`).run(x, y, blob); break
        case 3: d.prepare('UPDATE OR IGNORE quadrants SET quadrant_x = quadrant_x + 20 WHERE quadrant_x = ? AND quadrant_y = ?').run(x, y); break
        case 4: d.prepare(`INSERT OR REPLACE INTO metadata (key, value) VALUES (?, ?)`).run(`k${pick(4)}`, `v${count}`); break
        case 5: d.prepare('INSERT INTO run_log (msg) VALUES (?)').run(`m${count}`); break
        case 6: d.prepare('UPDATE run_log SET msg = ? WHERE rowid = (SELECT min(rowid) FROM run_log)').run(`u${count}`); break
        default:
          // Two tiles written together: a snapshot holds both old or both new.
          d.prepare('UPDATE quadrants SET notes = ? WHERE quadrant_x = 0 AND quadrant_y = 0').run(`pair${count}`)
          d.prepare('UPDATE quadrants SET notes = ? WHERE quadrant_x = 1 AND quadrant_y = 0').run(`pair${count}`)
      }
    })()
    count++
  }
  return {
    write: (n) => {
      for (let i = 0; i < n; i++) one()
    },
    close: () => db?.close(),
    writes: () => count,
  }
}

/** The database as it is now, read in one transaction, compared with what the stepped scan returned. */
async function expectSameAsNow(ws: Workspace, stepped: Awaited<ReturnType<Workspace['scan']>>, label: string): Promise<void> {
  const db = ws.openDb(true)
  try {
    const now = await inTransaction(db, 'read', () => ws.scan(db, {store: false, rescan: true}))
    const changes = await computeChangeSet(now.state, stepped.state, stepped.reader)
    expect(isEmpty(changes), `${label}: ${JSON.stringify(changes.summary)} ${JSON.stringify(changes.tables.map((t) => t.table))}`).to.equal(true)
    expect(stepped.state.snapshot.header, label).to.deep.equal(now.state.snapshot.header)
    expect(stepped.state.snapshot.schema, label).to.deep.equal(now.state.snapshot.schema)
  } finally {
    db.close()
  }
}

describe('stepped scans: one moment without a long read lock', () => {
  for (const mode of ['DELETE', 'WAL']) {
    it(`a scan with writes between its steps equals the database at its end, for full and recorded scans (property test, ${mode})`, async function () {
      this.timeout(180_000)
      const {dir, db} = makeProject({width: 8, height: 6})
      withDb(db, (d) => {
        d.pragma(`journal_mode = ${mode}`)
        d.exec('CREATE TABLE run_log (msg TEXT)')
        for (let i = 0; i < 12; i++) d.prepare('INSERT INTO run_log (msg) VALUES (?)').run(`start${i}`)
      })
      await initRepository({dir})
      const ws = await Workspace.open(dir)
      await commit(ws, {message: 'base', author})
      const rand = prng(mode === 'WAL' ? 7 : 11)
      let steps = 0
      for (let trial = 0; trial < 24; trial++) {
        const writer = randomWriter(db, 100 + trial)
        const rescan = trial % 3 === 0
        const scanDb = ws.openDb(true)
        let stepped
        try {
          stepped = await ws.scan(scanDb, {store: false, rescan, limits, between: () => {
            steps++
            writer.write(Math.floor(rand() * 3))
          }})
        } finally {
          scanDb.close()
          writer.close()
        }
        await expectSameAsNow(ws, stepped, `trial ${trial} (${rescan ? 'full' : 'from the record'}, ${writer.writes()} writes)`)
        if (trial % 6 === 5) await commit(ws, {message: `trial ${trial}`, author})
      }
      expect(steps).to.be.greaterThan(200)
    })
  }

  it('a schema change between steps starts the scan again; tracking off still gives one moment', async function () {
    this.timeout(60_000)
    const {dir, db} = makeProject({width: 6, height: 5})
    withDb(db, (d) => d.exec('CREATE TABLE run_log (msg TEXT)'))
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'base', author})
    let altered = 0
    const scanDb = ws.openDb(true)
    let stepped
    try {
      stepped = await ws.scan(scanDb, {store: false, rescan: true, limits, between: () => {
        if (altered++ === 2) withDb(db, (d) => d.exec('ALTER TABLE quadrants ADD COLUMN late TEXT'))
        withDb(db, (d) => d.prepare('UPDATE quadrants SET notes = ? WHERE quadrant_x = 0 AND quadrant_y = 0').run(`n${altered}`))
      }})
    } finally {
      scanDb.close()
    }
    expect(stepped.state.snapshot.schema.some((e) => e.sql?.includes('late'))).to.equal(true)
    await expectSameAsNow(ws, stepped, 'after ALTER TABLE')
    await setTracking(ws, false)
    const writer = randomWriter(db, 5)
    const plain = ws.openDb(true)
    try {
      stepped = await ws.scan(plain, {store: false, limits: {...limits, smallRows: 0}, between: () => writer.write(1)})
    } finally {
      plain.close()
      writer.close()
    }
    expect(stepped.tracking.installed).to.equal(false)
    // Nothing follows the tiles now: written all along, they were read under one lock, and said so.
    expect(stepped.notes.join('\n')).to.match(/read inside one read transaction .*tracking on/)
    await expectSameAsNow(ws, stepped, 'tracking off')
  })
})
