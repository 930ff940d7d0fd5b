import {expect} from 'chai'

import {commit} from '../src/ops/commit.js'
import {author, cloneOf, exactDump, projectWith, run} from './support/shapes.js'

describe('push of a table that went back to an earlier state', () => {
  it('sends every object of A -> B -> A, so a clone of each commit is complete', async () => {
    const {db, ws} = await projectWith(`CREATE TABLE tiles (x INTEGER NOT NULL, y INTEGER NOT NULL, img BLOB, PRIMARY KEY (x, y));
      CREATE TABLE notes (k TEXT PRIMARY KEY, v TEXT);`, {table: 'tiles'})
    await commit(ws, {message: 'empty', author})
    run(db, `INSERT INTO notes VALUES ('a', '1')`)
    const a = await commit(ws, {message: 'A', author})
    const atA = exactDump(db)
    run(db, `INSERT INTO notes VALUES ('zz', '2')`)
    await commit(ws, {message: 'B', author})
    run(db, `DELETE FROM notes WHERE k = 'zz'`)
    await commit(ws, {message: 'A again', author})
    // The first push sends all four commits; the leaf of 'a' was new only in commit A.
    expect(exactDump((await cloneOf(ws, a.id!)).db)).to.deep.equal(atA)
    expect(exactDump((await cloneOf(ws)).db)).to.deep.equal(atA)
  })
})
