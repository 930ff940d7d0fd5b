import {expect} from 'chai'

import {checkout} from '../src/ops/checkout.js'
import {commit} from '../src/ops/commit.js'
import {status} from '../src/ops/status.js'
import {author, cloneOf, exactDump, projectWith, query, run} from './support/shapes.js'

async function expectCode(p: Promise<unknown>, code: string, text?: RegExp): Promise<Error> {
  try {
    await p
  } catch (error) {
    expect((error as {code?: string}).code, (error as Error).message).to.equal(code)
    if (text) expect((error as Error).message + ' ' + String((error as {hint?: string}).hint)).to.match(text)
    return error as Error
  }
  expect.fail(`expected ${code}`)
}

const TILES = `CREATE TABLE tiles (x INTEGER NOT NULL, y INTEGER NOT NULL, img BLOB, PRIMARY KEY (x, y));
INSERT INTO tiles VALUES (0, 0, x'01'), (1, 0, x'02');`

describe('SQLite shapes: every row comes back, or tilesync refuses up front', () => {
  it('keeps user tables whose names only look like tilesync\'s own (LIKE \'_tilesync%\' matched them)', async () => {
    const {db, ws} = await projectWith(`${TILES}
      CREATE TABLE Xtilesync_backup (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO Xtilesync_backup VALUES (1, 'keep me');
      CREATE TABLE atilesync_log (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO atilesync_log VALUES (1, 'and me');
      CREATE TABLE _TileSyncNotes (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO _TileSyncNotes VALUES (1, 'me too');
      CREATE TABLE _tilesync_extra (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO _tilesync_extra VALUES (1, 'mine');
      CREATE TRIGGER _tilesync_tiles_note AFTER INSERT ON tiles BEGIN INSERT INTO atilesync_log (v) VALUES ('insert'); END;`, {table: 'tiles'})
    const before = exactDump(db)
    await commit(ws, {message: 'one', author})
    expect(exactDump(db)).to.deep.equal(before)
    const names = (await ws.stateOf(await ws.repo.refs.headCommit())).snapshot.tables.map((t) => t.name)
    expect(names).to.include.members(['Xtilesync_backup', 'atilesync_log', '_TileSyncNotes', '_tilesync_extra', 'tiles'])
    run(db, `UPDATE Xtilesync_backup SET v = 'changed'`)
    expect((await status(ws)).changes.tables.map((t) => t.table)).to.deep.equal(['Xtilesync_backup'])
    await commit(ws, {message: 'two', author})
    await checkout(ws, {revision: 'HEAD~1'})
    expect(exactDump(db)).to.deep.equal(before)
    expect(exactDump((await cloneOf(ws)).db)).to.deep.equal(before)
  })
})
