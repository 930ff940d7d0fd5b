import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {exportDataset} from '../src/dataset/export-dataset.js'
import {checkout} from '../src/ops/checkout.js'
import {clone} from '../src/ops/clone.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {commit} from '../src/ops/commit.js'
import {diff} from '../src/ops/diff.js'
import {initRepository} from '../src/ops/init.js'
import {log} from '../src/ops/log.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {writeDiffReport} from '../src/viewer/report.js'
import {RepoView} from '../src/viewer/repo-view.js'
import {ViewerApi} from '../src/viewer/viewer-api.js'
import {cli, cliJson} from './support/cli.js'
import {DB_REL, dumpDatabase, makeProject, png, tmpDir, withDb} from './support/fixtures.js'

const author = {name: 'T', email: 't@x'}

const tiles = (s: Awaited<ReturnType<typeof status>>): unknown[] => s.changes.tiles.map((t) => [t.key, t.status, t.layers.map((l) => `${l.layer} ${l.change}`), t.columns])

describe('layers the app adds while it runs', () => {
  it('a BLOB column added after init is an image layer: its commit reports the schema change and only the tiles that gained it', async function () {
    this.timeout(120_000)
    const {dir, db} = makeProject({width: 6, height: 5})
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'base', author})
    withDb(db, (d) => {
      // As the app does it: a layer and a flag, each when first needed.
      d.exec('ALTER TABLE quadrants ADD COLUMN dark_mode BLOB')
      d.exec('ALTER TABLE quadrants ADD COLUMN flagged INTEGER DEFAULT 0')
      d.prepare('UPDATE quadrants SET dark_mode = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(png(501), 1, 1)
      d.prepare('UPDATE quadrants SET dark_mode = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(png(502), -2, -1)
      d.prepare('UPDATE quadrants SET flagged = 1 WHERE quadrant_x = 0 AND quadrant_y = 0').run()
    })
    const st = await status(ws)
    expect(tiles(st)).to.deep.equal([['-2,-1', 'modified', ['dark_mode added'], []], ['0,0', 'modified', [], ['flagged']], ['1,1', 'modified', ['dark_mode added'], []]])
    expect(st.changes.schema).to.deep.equal([
      {kind: 'column', name: 'dark_mode', table: 'quadrants', change: 'added'},
      {kind: 'column', name: 'flagged', table: 'quadrants', change: 'added'},
    ])
    expect(st.changes.layers).to.deep.equal(['render', 'generation', 'dark_mode'])
    const text = cli(dir, ['status']).stdout
    expect(text).to.contain('schema: column dark_mode added (image layer)')
    expect(text).to.contain('schema: column flagged added\n')
    expect(text).to.match(/M tile 1,1 +dark_mode added \(/)

    const c = cli(dir, ['commit', '-m', 'dark mode for two tiles'])
    expect(c.code, c.stderr).to.equal(0)
    expect(c.stdout).to.contain(' 0 tiles added, 3 modified, 0 deleted; 3 rows changed')
    expect(c.stdout).to.contain(' schema: column dark_mode added (image layer)')
    expect((await status(ws)).clean).to.equal(true)

    // A NULL blob is that layer taken off the tile, not a deleted tile.
    withDb(db, (d) => d.prepare('UPDATE quadrants SET dark_mode = NULL WHERE quadrant_x = 1 AND quadrant_y = 1').run())
    const d1 = await diff(ws)
    expect(d1.changes.tiles.map((t) => [t.key, t.status, t.layers.map((l) => [l.layer, l.change, l.new])])).to.deep.equal([['1,1', 'modified', [['dark_mode', 'removed', null]]]])
    expect(cli(dir, ['diff']).stdout).to.match(/M tile 1,1 +dark_mode removed \(was [0-9a-f]{10}, /)
    await commit(ws, {message: 'no dark mode for 1,1', author})
    const [last] = await log(ws, {limit: 1, stat: true})
    expect(last.stat!.layers).to.deep.equal({dark_mode: {added: 0, removed: 1, modified: 0}})
    expect(last.stat!.events).to.deep.equal(['dark_mode removed from tile 1,1'])
    const logText = cli(dir, ['log', '--stat', '-n', '2']).stdout
    expect(logText).to.contain('Layers: dark_mode 1 removed')
    expect(logText).to.contain('  dark_mode removed from tile 1,1')
    expect(logText).to.contain('schema: column dark_mode added (image layer)')

    // The HTML report and the viewer show the layer, and say it was removed.
    const report = path.join(tmpDir('report'), 'r.html')
    await writeDiffReport(ws, await diff(ws, {from: 'HEAD~1', to: 'HEAD'}), report)
    const html = fs.readFileSync(report, 'utf8')
    expect(html).to.match(/<tr data-layer="dark_mode" data-changed="true"><th data-change="removed">dark_mode <span class="badge deleted">removed<\/span>/)
    const view = new RepoView(ws)
    try {
      const api = new ViewerApi(ws)
      try {
        expect((await api.pyramid.index('HEAD')).layers).to.deep.equal(['render', 'generation', 'dark_mode'])
      } finally {
        api.close()
      }
      const h = await view.tileHistory('HEAD', 1, 1)
      expect(h.versions.map((v) => [v.message, v.summary, v.layerChanges])).to.deep.equal([
        ['no dark mode for 1,1', ['dark_mode removed from tile 1,1'], {dark_mode: 'removed'}],
        ['dark mode for two tiles', ['dark_mode added to tile 1,1'], {dark_mode: 'added'}],
        ['base', [], {render: 'added', generation: 'added'}],
      ])
      // A tile the new column left NULL has no version at the commit that added the column.
      expect((await view.tileHistory('HEAD', 2, 2)).versions.map((v) => v.message)).to.deep.equal(['base'])
      const served = await view.diff('HEAD~1', 'HEAD')
      expect(served.changes.tiles[0].layers[0]).to.deep.include({layer: 'dark_mode', change: 'removed'})
    } finally {
      view.close()
    }

    // The oxen export gives the layer its own folder and CSV columns.
    const out = path.join(tmpDir('export'), 'ds')
    await exportDataset(ws, {dir: out})
    expect(fs.readFileSync(path.join(out, 'generations.csv'), 'utf8').split('\n')[0]).to.equal('render,quadrant,dark_mode,x,y,hash_render,hash_quadrant,hash_dark_mode')
    expect(fs.readdirSync(path.join(out, 'dark_mode'))).to.have.length(1)
    expect(fs.readdirSync(path.join(out, 'dark_mode'))[0]).to.match(/^-002_-001_[0-9a-f]{8}\.png$/)

    // Dropping the column: the schema change, plus the one tile that still had an image there.
    withDb(db, (d) => d.exec('ALTER TABLE quadrants DROP COLUMN dark_mode'))
    const dropped = await status(ws)
    expect(tiles(dropped)).to.deep.equal([['-2,-1', 'modified', ['dark_mode removed'], []]])
    expect(dropped.changes.schema).to.deep.equal([{kind: 'column', name: 'dark_mode', table: 'quadrants', change: 'removed'}])
    const dc = await commit(ws, {message: 'drop dark mode', author})
    expect(dc.summary).to.deep.include({tilesModified: 1, rowsChanged: 1})
  })

  it('checkout across an added layer alters the table in place, and --dry-run counts the same rows', async function () {
    this.timeout(120_000)
    const {dir, db} = makeProject({width: 6, height: 5, queueItems: 4})
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'base', author})
    const baseDump = dumpDatabase(db)
    withDb(db, (d) => {
      d.exec('ALTER TABLE quadrants ADD COLUMN water_mask BLOB')
      d.exec('ALTER TABLE quadrants ADD COLUMN is_water INTEGER DEFAULT 0')
      d.prepare('UPDATE quadrants SET water_mask = ?, is_water = 1 WHERE quadrant_y = -1').run(png(77))
    })
    await commit(ws, {message: 'water', author})
    const waterDump = dumpDatabase(db)
    const dry = await checkout(ws, {revision: 'HEAD~1', dryRun: true})
    const real = await checkout(ws, {revision: 'HEAD~1'})
    expect([real.rowsWritten, real.rowsDeleted]).to.deep.equal([dry.rowsWritten, dry.rowsDeleted])
    expect(real.rowsWritten).to.equal(0)
    const {__schema: _a, generation_queue: _q1, ...baseRows} = baseDump
    const {__schema: _b, generation_queue: _q2, ...nowRows} = dumpDatabase(db)
    expect(nowRows).to.deep.equal(baseRows)
    const dry2 = await checkout(ws, {revision: 'main', dryRun: true})
    const real2 = await checkout(ws, {revision: 'main'})
    expect(real2.rowsWritten).to.equal(6)
    expect([real2.rowsWritten, real2.rowsDeleted]).to.deep.equal([dry2.rowsWritten, dry2.rowsDeleted])
    expect(dumpDatabase(db)).to.deep.equal(waterDump)
    expect((await status(ws, {rescan: true})).clean).to.equal(true)
    // Restoring one tile from before the layer existed takes its image off (the layer's "absent" is NULL).
    const one = await checkout(ws, {revision: 'HEAD~1', tiles: [[0, -1]], force: true})
    expect(one.rowsWritten).to.equal(1)
    expect(withDb(db, (d) => d.prepare('SELECT water_mask, is_water FROM quadrants WHERE quadrant_x = 0 AND quadrant_y = -1').get())).to.deep.equal({water_mask: null, is_water: 0})
  })

  it('with --images given at init, an image column the app drops is no longer a layer: every command still works, and checkout brings it back', async function () {
    this.timeout(120_000)
    const {dir, db} = makeProject({width: 4, height: 3})
    const bad = cli(dir, ['init', '--images', 'render,nosuch'])
    expect(bad.code).to.equal(1)
    expect(bad.stderr.trim().split('\n')).to.have.length(1)
    expect(bad.stderr).to.include('has no image column "nosuch"')
    expect(fs.existsSync(path.join(dir, '.tilesync'))).to.equal(false)
    await initRepository({dir, images: ['render', 'generation']})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'base', author})
    const baseDump = dumpDatabase(db)
    // (The generated column is_generated reads generation: render is the one the app can drop.)
    withDb(db, (d) => d.exec('ALTER TABLE quadrants DROP COLUMN render'))
    const s = cliJson<{clean: boolean; changes: {schema?: unknown}}>(dir, ['status'])
    expect(s.clean).to.equal(false)
    expect(cli(dir, ['status']).stdout).to.include('schema: column render removed')
    const dropped = await commit(ws, {message: 'drop render', author})
    expect(dropped.id).to.be.a('string')
    expect(await Workspace.open(dir).then((w) => w.specs(w.openDb(true)).find((t) => t.isTileTable)!.layers.length)).to.equal(1)
    await checkout(ws, {revision: 'HEAD~1'})
    const {__schema: _a, ...baseRows} = baseDump
    const {__schema: _b, ...nowRows} = dumpDatabase(db)
    expect(nowRows).to.deep.equal(baseRows)
    expect((await status(ws, {rescan: true})).clean).to.equal(true)
  })

  it('a pull merges tile changes across a layer one side added: no whole-table conflict', async function () {
    this.timeout(60_000)
    const a = makeProject({width: 5, height: 4})
    await initRepository({dir: a.dir})
    const aws = await Workspace.open(a.dir)
    await commit(aws, {message: 'base', author})
    const remote = path.join(tmpDir('remote'), 'r')
    await addRemote(aws.repo, 'origin', remote)
    await push(aws, {remote: 'origin'})
    const bdir = path.join(tmpDir('clone'), 'b')
    await clone({url: remote, dir: bdir})
    const bws = await Workspace.open(bdir)
    const bdb = path.join(bdir, DB_REL)
    // Machine A's app adds the dark_mode layer; machine B's pipeline regenerates another tile.
    withDb(a.db, (d) => {
      d.exec('ALTER TABLE quadrants ADD COLUMN dark_mode BLOB')
      d.prepare('UPDATE quadrants SET dark_mode = ? WHERE quadrant_x = 0 AND quadrant_y = 0').run(png(61))
    })
    await commit(aws, {message: 'a: dark mode', author})
    await push(aws, {remote: 'origin'})
    withDb(bdb, (d) => d.prepare('UPDATE quadrants SET generation = ?, notes = ? WHERE quadrant_x = -1 AND quadrant_y = 1').run(png(62), 'b'))
    await commit(bws, {message: 'b: regenerated -1,1', author})
    const r = await pull(bws)
    expect(r.merge?.outcome, JSON.stringify(r.merge?.conflicts)).to.equal('merged')
    const row = (x: number, y: number): {generation: Buffer; dark_mode: Buffer | null; notes: string | null} => withDb(bdb, (d) => d.prepare('SELECT generation, dark_mode, notes FROM quadrants WHERE quadrant_x = ? AND quadrant_y = ?').get(x, y)) as never
    expect(row(0, 0).dark_mode).to.deep.equal(png(61))
    expect(row(-1, 1)).to.deep.include({notes: 'b', dark_mode: null})
    expect(row(-1, 1).generation).to.deep.equal(png(62))
    expect((await status(bws, {rescan: true})).clean).to.equal(true)
    const [merge] = await log(bws, {limit: 1, stat: true})
    // Against B's own commit, the merge brought the layer and its one image.
    expect(merge.stat!.schema).to.deep.equal([{kind: 'column', name: 'dark_mode', table: 'quadrants', change: 'added'}])
    expect(merge.stat!.events).to.deep.equal(['dark_mode added to tile 0,0'])
  })

  it('compares rows by column name when two databases hold the columns in another order', async () => {
    const {dir, db} = makeProject({width: 4, height: 4, runtimeColumns: ['water_mask', 'dark_mode'], layerRatio: 0.5})
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'water_mask, dark_mode', author})
    // Another database's history: the app created dark_mode first. Same values.
    withDb(db, (d) => d.exec(`
      CREATE TEMP TABLE keep AS SELECT quadrant_x, quadrant_y, water_mask, dark_mode FROM quadrants;
      ALTER TABLE quadrants DROP COLUMN water_mask; ALTER TABLE quadrants DROP COLUMN dark_mode;
      ALTER TABLE quadrants ADD COLUMN dark_mode BLOB; ALTER TABLE quadrants ADD COLUMN water_mask BLOB;
      UPDATE quadrants SET (water_mask, dark_mode) = (SELECT water_mask, dark_mode FROM keep k WHERE k.quadrant_x = quadrants.quadrant_x AND k.quadrant_y = quadrants.quadrant_y);
    `))
    const st = await status(ws)
    expect(st.changes.tiles).to.deep.equal([])
    expect(st.changes.schema).to.deep.equal([{kind: 'table', name: 'quadrants', change: 'changed'}])
    const json = cliJson<{changes: {summary: {rowsChanged: number}}}>(dir, ['diff'])
    expect(json.changes.summary.rowsChanged).to.equal(0)
  })
})
