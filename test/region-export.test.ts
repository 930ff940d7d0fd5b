import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {exportDataset} from '../src/dataset/export-dataset.js'
import {importDataset} from '../src/dataset/import-dataset.js'
import {formatCoord} from '../src/dataset/layout.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {showRegion} from '../src/ops/show.js'
import {Workspace} from '../src/workspace/workspace.js'
import {cli} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {makeProject, tmpDir, withDb} from './support/fixtures.js'

const author = {name: 'Tester', email: 't@example.com'}

async function repoWithCommit(seed = 1): Promise<{ws: Workspace; db: string; dir: string}> {
  const {dir, db} = makeProject({seed})
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  return {ws, db, dir}
}

/** The tiles inside the box with an image in `layer`, as [x, y, bytes]. */
function imagesIn(db: string, layer: string, [x0, y0, x1, y1]: number[]): Array<[number, number, Buffer]> {
  return withDb(db, (d) => (d.prepare(`SELECT quadrant_x AS x, quadrant_y AS y, ${layer} AS v FROM quadrants WHERE ${layer} IS NOT NULL AND quadrant_x BETWEEN ? AND ? AND quadrant_y BETWEEN ? AND ? ORDER BY quadrant_y, quadrant_x`).all(x0, x1, y0, y1) as Array<{x: number; y: number; v: Buffer}>).map((r) => [r.x, r.y, r.v]))
}

describe('a region as files: export --bbox and show --bbox -o DIR', () => {
  it('export --bbox writes only the region: its CSV lines and images, no tilesync/; importing it elsewhere adds and deletes nothing', async () => {
    const a = await repoWithCommit(1)
    const box = [0, 0, 2, 2]
    const dir = path.join(tmpDir('region'), 'batch')
    const e = await exportDataset(a.ws, {dir, bbox: [0, 0, 2, 2]})
    expect(e.tiles).to.equal(9)
    expect(fs.existsSync(path.join(dir, 'tilesync'))).to.equal(false)
    const csv = fs.readFileSync(path.join(dir, 'generations.csv'), 'utf8').split('\n').filter(Boolean)
    expect(csv).to.have.length(1 + 9)
    for (const line of csv.slice(1)) {
      const [, , x, y] = line.split(',')
      expect(Number(x)).to.be.within(0, 2)
      expect(Number(y)).to.be.within(0, 2)
    }
    expect(fs.readdirSync(path.join(dir, 'renders'))).to.have.length(imagesIn(a.db, 'render', box).length)
    expect(fs.readdirSync(path.join(dir, 'quadrants'))).to.have.length(imagesIn(a.db, 'generation', box).length)
    expect(fs.readFileSync(path.join(dir, 'README.md'), 'utf8')).to.match(/inside x 0\.\.2, y 0\.\.2 only/)

    // Another copy of the same history takes the batch in: one tile changed, nothing deleted.
    setGeneration(a.db, 1, 1, 321)
    await commit(a.ws, {message: 'tile 1,1 regenerated', author})
    const again = await exportDataset(a.ws, {dir, bbox: [0, 0, 2, 2]})
    expect(again.written).to.be.at.most(3)
    const b = await repoWithCommit(1)
    const r = await importDataset(b.ws, {dir})
    expect(r.additive).to.equal(true)
    expect(r.summary).to.deep.equal({tilesAdded: 0, tilesModified: 1, tilesDeleted: 0})
    expect(withDb(b.db, (d) => (d.prepare('SELECT count(*) AS n FROM quadrants').get() as {n: number}).n)).to.equal(30)

    // A region over a whole export would break its manifest: refused.
    const whole = path.join(tmpDir('region'), 'whole')
    await exportDataset(a.ws, {dir: whole})
    const bad = cli(a.dir, ['export', whole, '--bbox', '0,0,1,1'])
    expect(bad.code).to.equal(1)
    expect(bad.stderr).to.match(/holds a whole export/)
  })

  it('show --bbox -o DIR writes the region\'s images of one layer as <x>_<y>.png, byte for byte', async () => {
    const a = await repoWithCommit(1)
    const out = path.join(tmpDir('region'), 'pngs')
    const r = await showRegion(a.ws, {revision: 'HEAD', bbox: [-1, -1, 1, 0], layer: 'generation', output: out})
    const expected = imagesIn(a.db, 'generation', [-1, -1, 1, 0])
    expect(expected.length).to.be.greaterThan(0)
    expect(r.files).to.equal(expected.length)
    expect(fs.readdirSync(out).sort()).to.deep.equal(expected.map(([x, y]) => `${formatCoord(x)}_${formatCoord(y)}.png`).sort())
    for (const [x, y, bytes] of expected) expect(fs.readFileSync(path.join(out, `${formatCoord(x)}_${formatCoord(y)}.png`))).to.deep.equal(bytes)

    const run = cli(a.dir, ['show', 'HEAD', '--bbox', '0,0,2,2', '--layer', 'render', '-o', path.join(out, 'renders')])
    expect(run.code, run.stderr).to.equal(0)
    expect(run.stdout).to.match(new RegExp(`Wrote ${imagesIn(a.db, 'render', [0, 0, 2, 2]).length} render image\\(s\\) of tiles 0,0,2,2`))
    const noOut = cli(a.dir, ['show', 'HEAD', '--bbox', '0,0,2,2'])
    expect(noOut.code).to.not.equal(0)
    expect(noOut.stderr).to.match(/--bbox needs -o DIR/)
  })
})
