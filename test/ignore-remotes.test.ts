import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {exportDataset} from '../src/dataset/export-dataset.js'
import {importDataset} from '../src/dataset/import-dataset.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {DB_REL, makeProject, png, tmpDir, withDb} from './support/fixtures.js'
import {type OxenHub, startOxenHub} from './support/oxen-hub.js'

const author = {name: 'T', email: 't@x'}
const queueRows = (db: string): unknown[] => withDb(db, (d) => d.prepare('SELECT * FROM generation_queue ORDER BY id').raw(true).all())

/** A project with the pipeline's queue (left out by init) and a dark_mode layer the app added. */
async function project(): Promise<{ws: Workspace; db: string}> {
  const {dir, db} = makeProject({width: 5, height: 4, queueItems: 6, runtimeColumns: ['flagged', 'dark_mode'], layerRatio: 0.3})
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  return {ws, db}
}

describe('ignored tables across remotes, pulls and datasets', () => {
  let hub: OxenHub
  before(async () => {
    hub = await startOxenHub()
  })
  after(async () => {
    await hub.close()
  })

  it('a pull (fast-forward and merge) never writes the queue', async function () {
    this.timeout(60_000)
    const a = await project()
    const remote = path.join(tmpDir('remote'), 'r')
    await addRemote(a.ws.repo, 'origin', remote)
    await push(a.ws, {remote: 'origin'})
    const dir = path.join(tmpDir('clone'), 'c')
    await clone({url: remote, dir})
    const b = {ws: await Workspace.open(dir), db: path.join(dir, DB_REL)}
    // The app on each machine works its own queue.
    withDb(b.db, (d) => d.prepare(`INSERT INTO generation_queue (item_type, quadrants, status, created_at) VALUES ('generation', '[[1,1]]', 'pending', 5)`).run())
    withDb(a.db, (d) => d.prepare(`UPDATE generation_queue SET status = 'done'`).run())
    const bQueue = queueRows(b.db)
    withDb(a.db, (d) => d.prepare('UPDATE quadrants SET dark_mode = ? WHERE quadrant_x = 0 AND quadrant_y = 0').run(png(31)))
    await commit(a.ws, {message: 'a: dark mode 0,0', author})
    await push(a.ws, {remote: 'origin'})
    const ff = await pull(b.ws)
    expect(ff.merge?.outcome).to.equal('fast-forward')
    expect(queueRows(b.db)).to.deep.equal(bQueue)
    expect(withDb(b.db, (d) => (d.prepare('SELECT dark_mode FROM quadrants WHERE quadrant_x = 0 AND quadrant_y = 0').get() as {dark_mode: Buffer}).dark_mode)).to.deep.equal(png(31))
    // Diverged: a three-way merge, and still the queue is B's own.
    withDb(a.db, (d) => d.prepare('UPDATE quadrants SET notes = ? WHERE quadrant_x = 1 AND quadrant_y = 1').run('a'))
    await commit(a.ws, {message: 'a: note', author})
    await push(a.ws, {remote: 'origin'})
    withDb(b.db, (d) => d.prepare('UPDATE quadrants SET notes = ? WHERE quadrant_x = -1 AND quadrant_y = -1').run('b'))
    await commit(b.ws, {message: 'b: note', author})
    withDb(b.db, (d) => d.prepare(`UPDATE generation_queue SET status = 'running' WHERE status = 'pending'`).run())
    const bQueue2 = queueRows(b.db)
    const merged = await pull(b.ws)
    expect(merged.merge?.outcome).to.equal('merged')
    expect(queueRows(b.db)).to.deep.equal(bQueue2)
    expect((await status(b.ws, {rescan: true})).clean).to.equal(true)
  })

  it('an oxen push and clone, and tilesync export and import, keep leaving the queue out: no rows of it in the dataset, empty on the other side', async function () {
    this.timeout(120_000)
    const a = await project()
    await addRemote(a.ws.repo, 'hub', 'oxen://tiles/queue-city', {host: hub.host})
    await push(a.ws, {remote: 'hub', transport: {token: hub.token, backoffMs: 5, env: {}}})
    const dir = path.join(tmpDir('oxen-clone'), 'c')
    await clone({url: 'oxen://tiles/queue-city', dir, remote: {host: hub.host}, transport: {token: hub.token, backoffMs: 5, env: {}}})
    const cloned = path.join(dir, DB_REL)
    expect(queueRows(cloned)).to.deep.equal([])
    const cws = await Workspace.open(dir)
    expect(cws.repo.config.ignore).to.deep.equal(['generation_queue'])
    expect((await status(cws)).clean).to.equal(true)
    expect(withDb(cloned, (d) => (d.prepare('SELECT count(dark_mode) AS n FROM quadrants').get() as {n: number}).n))
      .to.equal(withDb(a.db, (d) => (d.prepare('SELECT count(dark_mode) AS n FROM quadrants').get() as {n: number}).n))

    const out = path.join(tmpDir('ds'), 'ds')
    await exportDataset(a.ws, {dir: out})
    expect(fs.readdirSync(path.join(out, 'tilesync', 'rows')).sort()).to.deep.equal(['metadata', 'quadrants'])
    expect(fs.readdirSync(path.join(out, 'dark_mode')).length).to.be.greaterThan(0)
    const b = makeProject({width: 5, height: 4, seed: 9, queueItems: 2, runtimeColumns: ['flagged', 'dark_mode']})
    await initRepository({dir: b.dir})
    const bws = await Workspace.open(b.dir)
    await commit(bws, {message: 'b', author})
    const before = queueRows(b.db)
    const r = await importDataset(bws, {dir: out})
    expect(r.mode).to.equal('exact')
    expect(queueRows(b.db)).to.deep.equal(before)
  })
})
