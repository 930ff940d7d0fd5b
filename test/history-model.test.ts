import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {createRef, listBranches, switchBranch} from '../src/ops/branches.js'
import {checkout} from '../src/ops/checkout.js'
import {commit} from '../src/ops/commit.js'
import {diff} from '../src/ops/diff.js'
import {initRepository} from '../src/ops/init.js'
import {log} from '../src/ops/log.js'
import {showTile} from '../src/ops/show.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {dumpDatabase, makeProject, png, tmpDir, withDb} from './support/fixtures.js'
import {generationOf, setGeneration} from './support/edit.js'

const author = {name: 'T', email: 't@x'}

async function countObjects(ws: Workspace): Promise<number> {
  let n = 0
  for await (const _ of ws.repo.store.list()) n++
  return n
}

describe('history model', () => {
  it('a commit changing 10 tiles of 100,000 writes objects that grow with the change, not the table', async function () {
    this.timeout(120_000)
    const dir = tmpDir()
    const file = path.join(dir, 'big.db')
    withDb(file, (d) => {
      d.exec('CREATE TABLE quadrants (quadrant_x INTEGER, quadrant_y INTEGER, generation BLOB, notes TEXT, PRIMARY KEY (quadrant_x, quadrant_y))')
      const ins = d.prepare('INSERT INTO quadrants VALUES (?, ?, NULL, ?)')
      d.transaction(() => {
        for (let x = -150; x < 250; x++) for (let y = -100; y < 150; y++) ins.run(x, y, `r${x}`)
      })()
    })
    await initRepository({dir, db: 'big.db'})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'seed 100k', author})
    const before = await countObjects(ws)
    withDb(file, (d) => {
      const up = d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?')
      for (let i = 0; i < 10; i++) up.run(png(i), i * 37 - 150, i * 23 - 100)
    })
    const r = await commit(ws, {message: '10 tiles', author})
    expect(r.summary.tilesModified).to.equal(10)
    const added = (await countObjects(ws)) - before
    // 10 blobs, <= 10 leaves, <= 10 level-1 nodes, 1 root, 1 table, 1 snapshot, 1 commit.
    expect(added).to.be.at.most(10 + 10 + 10 + 4)
    expect(added).to.be.at.least(10 + 1 + 1 + 4)
  })

  it('versions other table shapes: integer id key with row/col, a table without a primary key, composite text keys', async () => {
    const dir = tmpDir()
    const file = path.join(dir, 'tiles.db')
    withDb(file, (d) => {
      d.exec(`CREATE TABLE tiles (id INTEGER PRIMARY KEY, row INTEGER, col INTEGER, image BLOB, score REAL);
        CREATE TABLE log (msg TEXT, at INTEGER);
        CREATE TABLE tags (a TEXT, b TEXT, v BLOB, PRIMARY KEY (a, b)) WITHOUT ROWID;`)
      d.prepare('INSERT INTO tiles VALUES (1, 0, 0, ?, 1.0), (2, 0, 1, NULL, 2.5)').run(png(1))
      d.prepare(`INSERT INTO log VALUES ('a', 1), ('b', 2)`).run()
      d.prepare(`INSERT INTO tags VALUES ('x', 'y', ?)`).run(Buffer.from([1, 2, 3]))
    })
    const init = await initRepository({dir, db: 'tiles.db', table: 'tiles'})
    expect(init.tileTable).to.equal('tiles')
    expect(init.keyColumns).to.deep.equal(['id'])
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'one', author})
    const one = dumpDatabase(file)
    withDb(file, (d) => {
      d.prepare('UPDATE tiles SET image = ?, score = 3 WHERE id = 2').run(png(2))
      d.prepare(`DELETE FROM log WHERE msg = 'a'`).run()
      d.prepare(`INSERT INTO log VALUES ('c', 3)`).run()
      d.prepare(`UPDATE tags SET v = NULL`).run()
    })
    const st = await status(ws)
    expect(st.changes.tables.map((t) => [t.table, t.added, t.modified, t.deleted])).to.deep.equal([
      ['log', 1, 0, 1], ['tags', 0, 1, 0], ['tiles', 0, 1, 0],
    ])
    await commit(ws, {message: 'two', author})
    const two = dumpDatabase(file)
    await checkout(ws, {revision: 'HEAD~1'})
    expect(dumpDatabase(file)).to.deep.equal(one)
    await checkout(ws, {revision: 'main'})
    expect(dumpDatabase(file)).to.deep.equal(two)
  })

  it('restores single tiles and boxes without moving HEAD; diff --bbox filters', async () => {
    const {dir, db} = makeProject()
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'one', author})
    const original = generationOf(db, 0, 0)
    setGeneration(db, 0, 0, 11)
    setGeneration(db, 2, 1, 12)
    setGeneration(db, -3, -2, 13)
    await commit(ws, {message: 'two', author})
    const inBox = await diff(ws, {from: 'HEAD~1', to: 'HEAD', bbox: [-1, -1, 2, 2]})
    expect(inBox.changes.tiles.map((t) => t.key)).to.deep.equal(['0,0', '2,1'])
    const head = await ws.repo.refs.headCommit()
    const r = await checkout(ws, {revision: 'HEAD~1', tiles: [[0, 0]]})
    expect(r.partial).to.equal(true)
    expect(await ws.repo.refs.headCommit()).to.equal(head)
    expect(generationOf(db, 0, 0)).to.deep.equal(original)
    expect(generationOf(db, 2, 1)).to.deep.equal(png(12))
    expect((await status(ws)).changes.tiles.map((t) => t.key)).to.deep.equal(['0,0'])
    await checkout(ws, {revision: 'HEAD~1', bbox: [-5, -5, -1, -1], force: true})
    expect((await status(ws)).changes.tiles.map((t) => t.key)).to.deep.equal(['-3,-2', '0,0'])
  })

  it('branches, switch, tags, show -o and the reflog get back any state', async () => {
    const {dir, db} = makeProject()
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    const first = await commit(ws, {message: 'one', author})
    await createRef(ws, 'tags', 'v1')
    await switchBranch(ws, 'night', {create: true})
    setGeneration(db, 1, 1, 21)
    await commit(ws, {message: 'night run', author})
    expect((await listBranches(ws)).map((b) => [b.name, b.current])).to.deep.equal([['main', false], ['night', true]])
    await switchBranch(ws, 'main')
    expect(generationOf(db, 1, 1)).to.not.deep.equal(png(21))
    expect((await log(ws)).length).to.equal(1)
    expect((await log(ws, {revision: 'night'})).map((c) => c.message)).to.deep.equal(['night run', 'one'])
    const out = path.join(dir, 'out', 'tile.png')
    const shown = await showTile(ws, {revision: 'night', x: 1, y: 1, layer: 'generation', output: out})
    expect(fs.readFileSync(out)).to.deep.equal(png(21))
    expect(shown.object?.size).to.equal(png(21).length)
    expect(await ws.resolve('v1')).to.equal(first.id)
    // A mistaken checkout is undone through the reflog.
    await checkout(ws, {revision: 'night'})
    await checkout(ws, {revision: 'HEAD@{1}'})
    expect(await ws.repo.refs.headCommit()).to.equal(first.id)
  })
})
