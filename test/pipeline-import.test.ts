import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {importDataset} from '../src/dataset/import-dataset.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {REPO_ROOT, cli} from './support/cli.js'
import {dumpDatabase, makeProject, png, tmpDir, withDb} from './support/fixtures.js'

const author = {name: 'T', email: 't@x'}

/** The pipeline's own export of a database, written by a Python script as the pipeline writes it. */
function pipelineExport(db: string): string {
  const out = path.join(tmpDir('pipeline-export'), 'isometric-nyc-tiles')
  execFileSync('python3', [path.join(REPO_ROOT, 'test', 'support', 'pipeline_export.py'), db, out])
  return out
}

type Quad = {x: number; y: number; lat: number; tile_row: number; render: Buffer | null; generation: Buffer | null; tl: string; tr: string}
const quads = (db: string): Map<string, Quad> => new Map(withDb(db, (d) => d.prepare(`SELECT quadrant_x AS x, quadrant_y AS y, lat, tile_row, render, generation, typeof(lat) AS tl, typeof(tile_row) AS tr FROM quadrants`).all() as Quad[]).map((q) => [`${q.x},${q.y}`, q]))

async function expectCode(p: Promise<unknown>, code: string, match: RegExp): Promise<void> {
  try {
    await p
  } catch (error) {
    expect((error as {code?: string}).code, (error as Error).message).to.equal(code)
    expect((error as Error).message).to.match(match)
    return
  }
  expect.fail(`expected ${code}`)
}

describe("import of the pipeline's own export layout", () => {
  it('sets each listed tile\'s generation, creates missing tiles with 0s, stores generation_config and copies bounds.json: additively', async function () {
    this.timeout(60_000)
    const a = makeProject({seed: 1, width: 6, height: 5, generationRatio: 0.7})
    const config = '{"name": "nyc", "seed": {"lat": 40.7, "lng": -74.0}, "quadrant_size": 512}\n'
    const bounds = '{"tl": [-3, -2], "br": [2, 2]}\n'
    fs.writeFileSync(path.join(path.dirname(a.db), 'generation_config.json'), config)
    fs.writeFileSync(path.join(path.dirname(a.db), 'bounds.json'), bounds)
    const out = pipelineExport(a.db)
    const names = fs.readdirSync(path.join(out, 'generations'))
    const fromA = [...quads(a.db).values()].filter((q) => q.generation)
    expect(names).to.have.length(fromA.length)
    // Negative coordinates as Python's {:04d} writes them, hash = the first 8 hex of the MD5.
    const neg = fromA.find((q) => q.x < 0 && q.y < 0)!
    const pad = (n: number): string => (n < 0 ? `-${String(-n).padStart(3, '0')}` : String(n).padStart(4, '0'))
    expect(names).to.include(`${pad(neg.x)}_${pad(neg.y)}_${createHash('md5').update(neg.generation!).digest('hex').slice(0, 8)}.png`)
    expect(fs.readFileSync(path.join(out, 'generations.csv'), 'utf8').split(/\r?\n/)[0]).to.equal('x,y,quadrant,hash_quadrant')

    // Another machine's database: other images, two tiles missing, one tile with no generation.
    const b = makeProject({seed: 2, width: 6, height: 5})
    withDb(b.db, (d) => d.prepare('DELETE FROM quadrants WHERE quadrant_y = -2 AND quadrant_x IN (-3, -2)').run())
    await initRepository({dir: b.dir})
    const ws = await Workspace.open(b.dir)
    await commit(ws, {message: 'before import', author})
    const before = quads(b.db)
    const r = await importDataset(ws, {dir: out})
    expect(r.mode).to.equal('pipeline')
    const missingInB = fromA.filter((q) => !before.has(`${q.x},${q.y}`)).length
    const equal = fromA.filter((q) => before.get(`${q.x},${q.y}`)?.generation?.equals(q.generation!)).length
    expect(r.pipeline).to.deep.include({tiles: fromA.length, added: missingInB, updated: fromA.length - missingInB - equal, unchanged: equal, generationConfig: true})
    expect(r.pipeline!.copied).to.deep.equal(['generations/v01/bounds.json', 'generations/v01/generation_config.json'])
    const after = quads(b.db)
    for (const q of fromA) expect(after.get(`${q.x},${q.y}`)!.generation, `${q.x},${q.y}`).to.deep.equal(q.generation)
    for (const [k, q] of before) {
      // Renders and other tiles' generations stay: the export lists only generated tiles.
      expect(after.get(k)!.render, k).to.deep.equal(q.render)
      if (!fromA.some((g) => `${g.x},${g.y}` === k)) expect(after.get(k)!.generation, k).to.deep.equal(q.generation)
    }
    const created = after.get('-3,-2')!
    expect([created.lat, created.tl, created.tile_row, created.tr, created.render]).to.deep.equal([0, 'real', 0, 'integer', null])
    expect(after.size).to.equal(before.size + missingInB)
    expect(withDb(b.db, (d) => (d.prepare(`SELECT value FROM metadata WHERE key = 'generation_config'`).get() as {value: string}).value)).to.equal(config)
    expect(fs.readFileSync(path.join(path.dirname(b.db), 'bounds.json'), 'utf8')).to.equal(bounds)
    const st = await status(ws)
    expect(st.changes.summary.tilesAdded).to.equal(missingInB)
    await commit(ws, {message: 'import the pipeline export', author})

    // Again: nothing to do.
    const again = await importDataset(ws, {dir: out})
    expect(again.unchanged).to.equal(true)
    expect(again.rowsWritten).to.equal(0)
    expect(again.pipeline!.copied).to.deep.equal([])

    // The CLI says what it did.
    withDb(b.db, (d) => d.prepare('UPDATE quadrants SET generation = NULL WHERE quadrant_x = -3 AND quadrant_y = -2').run())
    await commit(ws, {message: 'lost one', author})
    const c = cli(b.dir, ['import', out])
    expect(c.code, c.stderr).to.equal(0)
    expect(c.stdout).to.contain("Imported the pipeline's export")
    expect(c.stdout).to.contain('1 updated, 0 added')
  })

  it('refuses a damaged export with one clear line, leaving the database untouched', async () => {
    const a = makeProject({seed: 3, width: 4, height: 4})
    const b = makeProject({seed: 4, width: 4, height: 4})
    await initRepository({dir: b.dir})
    const ws = await Workspace.open(b.dir)
    await commit(ws, {message: 'b', author})
    const dump = dumpDatabase(b.db)
    const fresh = (): string => pipelineExport(a.db)
    const first = (dir: string): string => fs.readdirSync(path.join(dir, 'generations'))[0]

    let out = fresh()
    fs.writeFileSync(path.join(out, 'generations', first(out)), png(999))
    await expectCode(importDataset(ws, {dir: out}), 'BAD_DATASET', /does not match the MD5 hash in its name/)

    out = fresh()
    fs.copyFileSync(path.join(out, 'generations', first(out)), path.join(out, 'generations', '0099_0099_00000000.png'))
    await expectCode(importDataset(ws, {dir: out}), 'BAD_DATASET', /0099_0099_00000000\.png is not listed in generations\.csv/)

    out = fresh()
    const csv = fs.readFileSync(path.join(out, 'generations.csv'), 'utf8').split(/\r?\n/)
    csv[1] = csv[1].replace(/^(-?\d+),/, '77,')
    fs.writeFileSync(path.join(out, 'generations.csv'), csv.join('\n'))
    await expectCode(importDataset(ws, {dir: out}), 'BAD_DATASET', /is named for tile .*, not 77,/)

    out = fresh()
    fs.writeFileSync(path.join(out, 'generations.csv'), 'x,y,quadrant,hash_quadrant\n1,1,generations/../../etc/passwd,abcdef01\n')
    await expectCode(importDataset(ws, {dir: out}), 'HOSTILE_PATH', /path traversal/)

    out = fresh()
    fs.writeFileSync(path.join(out, 'bounds.json'), '{not json')
    await expectCode(importDataset(ws, {dir: out}), 'BAD_DATASET', /bounds\.json is not valid JSON/)

    out = fresh()
    fs.writeFileSync(path.join(out, 'notes.txt'), 'x')
    await expectCode(importDataset(ws, {dir: out}), 'BAD_DATASET', /unknown file notes\.txt/)

    expect(dumpDatabase(b.db)).to.deep.equal(dump)
    expect(fs.existsSync(path.join(path.dirname(b.db), 'bounds.json'))).to.equal(false)
  })
})
