import {expect} from 'chai'
import * as path from 'node:path'

import {checkout} from '../src/ops/checkout.js'
import {commit} from '../src/ops/commit.js'
import {diff} from '../src/ops/diff.js'
import {initRepository} from '../src/ops/init.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {dumpDatabase, makeProject, png, withDb} from './support/fixtures.js'

describe('commit, edit, checkout round trip', () => {
  it('gives back the exact earlier database and then the later one', async () => {
    const {dir, db} = makeProject()
    const init = await initRepository({dir})
    expect(init.tileTable).to.equal('quadrants')
    expect(init.keyColumns).to.deep.equal(['quadrant_x', 'quadrant_y'])
    expect(init.imageColumns).to.deep.equal(['render', 'generation'])
    const ws = await Workspace.open(path.join(dir, 'generations'))
    const first = await commit(ws, {message: 'first', author: {name: 'T', email: 't@x'}})
    expect(first.committed).to.equal(true)
    const before = dumpDatabase(db)

    withDb(db, (d) => {
      d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = 0 AND quadrant_y = 0').run(png(999))
      d.prepare('UPDATE quadrants SET generation = NULL, notes = ? WHERE quadrant_x = 1 AND quadrant_y = 1').run('cleared')
      d.prepare('DELETE FROM quadrants WHERE quadrant_x = -3 AND quadrant_y = -2').run()
      d.prepare(`INSERT INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, render) VALUES (50, -50, 1.5, 2, 3, 4, 0, ?)`).run(png(5))
      d.prepare(`UPDATE metadata SET value = '4' WHERE key = 'schema_version'`).run()
    })
    const nullTile = withDb(db, (d) => d.prepare('SELECT quadrant_x AS x, quadrant_y AS y FROM quadrants WHERE generation IS NULL LIMIT 1').get() as {x: number; y: number})
    withDb(db, (d) => d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(png(4444), nullTile.x, nullTile.y))
    const st = await status(ws)
    expect(st.clean).to.equal(false)
    const byKey = Object.fromEntries(st.changes.tiles.map((t) => [t.key, t]))
    const nullKey = `${nullTile.x},${nullTile.y}`
    expect(Object.keys(byKey).sort()).to.deep.equal(['-3,-2', '0,0', '1,1', '50,-50', nullKey].sort())
    expect(byKey[nullKey].layers).to.have.length(1)
    expect(byKey[nullKey].layers[0].old).to.equal(null)
    expect(byKey[nullKey].layers[0].new?.size).to.equal(png(4444).length)
    expect(byKey['0,0'].status).to.equal('modified')
    expect(byKey['0,0'].layers.map((l) => l.layer)).to.deep.equal(['generation'])
    expect(byKey['1,1'].layers[0].new).to.equal(null)
    expect(byKey['1,1'].columns).to.deep.equal(['notes'])
    expect(byKey['-3,-2'].status).to.equal('deleted')
    expect(byKey['50,-50'].status).to.equal('added')
    expect(st.changes.tables.find((t) => t.table === 'metadata')?.modified).to.equal(1)

    const second = await commit(ws, {message: 'second'})
    expect(second.summary).to.include({tilesAdded: 1, tilesModified: 3, tilesDeleted: 1, rowsChanged: 6})
    const after = dumpDatabase(db)
    expect((await status(ws)).clean).to.equal(true)

    const again = await commit(ws, {message: 'nothing'})
    expect(again.committed).to.equal(false)

    const back = await checkout(ws, {revision: 'HEAD~1'})
    expect(back.detached).to.equal(true)
    expect(dumpDatabase(db)).to.deep.equal(before)
    expect((await status(ws)).clean).to.equal(true)

    await checkout(ws, {revision: 'main'})
    expect(dumpDatabase(db)).to.deep.equal(after)

    const d = await diff(ws, {from: 'HEAD~1', to: 'HEAD'})
    expect(d.changes.summary.rowsChanged).to.equal(6)
  })
})
