import {expect} from 'chai'
import {createHash} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {exportDataset} from '../src/dataset/export-dataset.js'
import {importDataset} from '../src/dataset/import-dataset.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {Workspace} from '../src/workspace/workspace.js'
import {execFileSync} from 'node:child_process'

import {cli, REPO_ROOT} from './support/cli.js'
import {generationOf} from './support/edit.js'
import {dumpDatabase, makeProject, png, tmpDir, withDb} from './support/fixtures.js'

const author = {name: 'Tester', email: 't@example.com'}
const md5_8 = (b: Buffer) => createHash('md5').update(b).digest('hex').slice(0, 8)

async function repoWithCommit(seed = 1): Promise<{ws: Workspace; db: string; dir: string}> {
  const {dir, db} = makeProject({seed})
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  return {ws, db, dir}
}

const tileCount = (db: string) => withDb(db, (d) => (d.prepare('SELECT count(*) AS n FROM quadrants').get() as {n: number}).n)
const renderOf = (db: string, x: number, y: number) => withDb(db, (d) => (d.prepare('SELECT render FROM quadrants WHERE quadrant_x = ? AND quadrant_y = ?').get(x, y) as {render: Buffer | null} | undefined)?.render ?? null)

function objectFiles(dir: string): number {
  let n = 0
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, {withFileTypes: true})) {
      if (e.isDirectory()) walk(path.join(d, e.name))
      else n++
    }
  }
  walk(path.join(dir, '.tilesync', 'objects'))
  return n
}

/**
 * The user's own export: the dataset layout without tilesync/, listing only some tiles (the
 * pipeline's export leaves out tiles with no image). Tile 0,0 gets a new generation image,
 * tile 1,1's render cell is left empty, and the CSV lists `keep` lines of tiles only.
 */
async function sidecarLessFolder(a: {ws: Workspace}, keep: number): Promise<{dir: string; listed: Array<[number, number]>; img: Buffer}> {
  const dir = path.join(tmpDir('user-export'), 'ds')
  await exportDataset(a.ws, {dir})
  fs.rmSync(path.join(dir, 'tilesync'), {recursive: true})
  const img = png(4242)
  fs.writeFileSync(path.join(dir, 'quadrants', `0000_0000_${md5_8(img)}.png`), img)
  const file = path.join(dir, 'generations.csv')
  const [header, ...lines] = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)
  // Tiles 0,0 and 1,1 first, then as many others as asked for.
  const at = (x: number, y: number) => lines.findIndex((l) => l.split(',')[2] === String(x) && l.split(',')[3] === String(y))
  const first = [at(0, 0), at(1, 1)]
  const rest = lines.map((_, i) => i).filter((i) => !first.includes(i)).slice(0, keep - 2)
  const chosen = [...first, ...rest].map((i) => lines[i].split(','))
  chosen[0][1] = `quadrants/0000_0000_${md5_8(img)}.png`
  chosen[0][5] = md5_8(img)
  chosen[1][0] = ''
  chosen[1][4] = ''
  fs.writeFileSync(file, [header, ...chosen.map((c) => c.join(','))].join('\n') + '\n')
  return {dir, listed: chosen.map((c) => [Number(c[2]), Number(c[3])]), img}
}

describe('import of a folder without tilesync/ (the user\'s own format)', () => {
  it('is additive: updates the tiles it lists, deletes none it lacks, and leaves images its empty cells name', async () => {
    const a = await repoWithCommit(1)
    const {dir, img} = await sidecarLessFolder(a, 10)
    const before = tileCount(a.db)
    expect(before).to.equal(30)
    const render11 = renderOf(a.db, 1, 1)
    expect(render11).to.not.equal(null)
    const r = await importDataset(a.ws, {dir})
    expect(r.additive).to.equal(true)
    expect(r.rowsDeleted).to.equal(0)
    expect(r.summary).to.deep.equal({tilesAdded: 0, tilesModified: 1, tilesDeleted: 0})
    expect(tileCount(a.db)).to.equal(30)
    expect(generationOf(a.db, 0, 0)).to.deep.equal(img)
    expect(renderOf(a.db, 1, 1)).to.deep.equal(render11)
  })

  it('--delete makes its generations.csv the whole truth: unlisted tiles deleted, empty cells cleared', async () => {
    const a = await repoWithCommit(1)
    const {dir} = await sidecarLessFolder(a, 10)
    const r = await importDataset(a.ws, {dir, delete: true})
    expect(r.additive).to.equal(false)
    expect(r.rowsDeleted).to.equal(20)
    expect(tileCount(a.db)).to.equal(10)
    expect(renderOf(a.db, 1, 1)).to.equal(null)
  })

  it('a folder with tilesync/ still deletes what it no longer has (its manifest records every row)', async () => {
    const a = await repoWithCommit(1)
    const dir = path.join(tmpDir('export'), 'ds')
    await exportDataset(a.ws, {dir})
    withDb(a.db, (d) => d.prepare('INSERT INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index) VALUES (99, 99, 0, 0, 0, 0, 0)').run())
    await commit(a.ws, {message: 'one more tile', author})
    const r = await importDataset(a.ws, {dir})
    expect(r.mode).to.equal('exact')
    expect(r.rowsDeleted).to.equal(1)
  })

  it('--dry-run says what would change and writes nothing: not the database, not the object store', async () => {
    const a = await repoWithCommit(1)
    const {dir} = await sidecarLessFolder(a, 10)
    const before = dumpDatabase(a.db)
    const objects = objectFiles(a.dir)
    const dry = await importDataset(a.ws, {dir, dryRun: true})
    expect(dry.dryRun).to.equal(true)
    expect(dry.summary).to.deep.equal({tilesAdded: 0, tilesModified: 1, tilesDeleted: 0})
    expect(dry.rowsWritten).to.equal(1)
    expect(dry.rowsDeleted).to.equal(0)
    const dryDelete = await importDataset(a.ws, {dir, dryRun: true, delete: true})
    expect(dryDelete.summary.tilesDeleted).to.equal(20)
    expect(dryDelete.rowsDeleted).to.equal(20)
    expect(dumpDatabase(a.db)).to.deep.equal(before)
    expect(objectFiles(a.dir)).to.equal(objects)
    // The real import then does what the dry run said.
    const real = await importDataset(a.ws, {dir})
    expect([real.rowsWritten, real.rowsDeleted, real.summary]).to.deep.equal([dry.rowsWritten, dry.rowsDeleted, dry.summary])
  })

  it('skips dotfiles (.DS_Store, ._x.png, .git/) instead of refusing the folder', async () => {
    const a = await repoWithCommit(1)
    const dir = path.join(tmpDir('export'), 'ds')
    await exportDataset(a.ws, {dir})
    fs.writeFileSync(path.join(dir, '.DS_Store'), 'finder')
    fs.writeFileSync(path.join(dir, 'renders', '.DS_Store'), 'finder')
    fs.writeFileSync(path.join(dir, 'quadrants', '._0000_0000_00000000.png'), 'apple double')
    fs.mkdirSync(path.join(dir, '.git'))
    fs.writeFileSync(path.join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n')
    fs.symlinkSync('/etc/passwd', path.join(dir, '.hidden-link'))
    const r = await importDataset(a.ws, {dir, force: true})
    expect(r.mode).to.equal('exact')
    expect(r.ignored).to.deep.equal(['.DS_Store', '.git', '.hidden-link', 'quadrants/._0000_0000_00000000.png', 'renders/.DS_Store'])
    expect(r.unchanged).to.equal(true)
  })

  it('a new tile the NOT NULL columns cannot hold gets a hint that says so, not "damaged or tampered with"', async () => {
    const a = await repoWithCommit(1)
    const {dir} = await sidecarLessFolder(a, 3)
    const img = png(99)
    fs.writeFileSync(path.join(dir, 'quadrants', `0050_0050_${md5_8(img)}.png`), img)
    fs.appendFileSync(path.join(dir, 'generations.csv'), `,quadrants/0050_0050_${md5_8(img)}.png,50,50,,${md5_8(img)}\n`)
    const before = dumpDatabase(a.db)
    const r = cli(a.dir, ['import', dir])
    expect(r.code).to.equal(1)
    expect(r.stderr.trim().split('\n')).to.have.length(1)
    expect(r.stderr).to.match(/tile 50,50 is new, and "quadrants" requires lat, lng, tile_row, tile_col, quadrant_index \(NOT NULL\)/)
    expect(r.stderr).to.match(/add the tile to the database first/)
    expect(r.stderr).to.not.match(/damaged|tampered/)
    const j = JSON.parse(cli(a.dir, ['import', dir, '--json']).stdout)
    expect(j.error.code).to.equal('DB_CONSTRAINT')
    expect(dumpDatabase(a.db)).to.deep.equal(before)
  })

  it('the pipeline\'s own export: --dry-run writes nothing (not even the JSON files beside the database), --delete is refused', async function () {
    this.timeout(60_000)
    const a = makeProject({seed: 1, width: 6, height: 5, generationRatio: 0.7})
    fs.writeFileSync(path.join(path.dirname(a.db), 'bounds.json'), '{"tl": [-3, -2], "br": [2, 2]}\n')
    const out = path.join(tmpDir('pipeline-export'), 'isometric-nyc-tiles')
    execFileSync('python3', [path.join(REPO_ROOT, 'test', 'support', 'pipeline_export.py'), a.db, out])
    const b = makeProject({seed: 2, width: 6, height: 5})
    await initRepository({dir: b.dir})
    const ws = await Workspace.open(b.dir)
    await commit(ws, {message: 'before import', author})
    const before = dumpDatabase(b.db)
    const objects = objectFiles(b.dir)
    const dry = await importDataset(ws, {dir: out, dryRun: true})
    expect(dry.mode).to.equal('pipeline')
    expect(dry.dryRun).to.equal(true)
    expect(dry.rowsWritten).to.be.greaterThan(0)
    expect(dry.rowsDeleted).to.equal(0)
    expect(dumpDatabase(b.db)).to.deep.equal(before)
    expect(objectFiles(b.dir)).to.equal(objects)
    expect(fs.existsSync(path.join(path.dirname(b.db), 'bounds.json'))).to.equal(false)
    try {
      await importDataset(ws, {dir: out, delete: true})
      expect.fail('expected BAD_ARGUMENT')
    } catch (error) {
      expect((error as {code?: string}).code).to.equal('BAD_ARGUMENT')
    }
    const real = await importDataset(ws, {dir: out})
    expect([real.rowsWritten, real.rowsDeleted]).to.deep.equal([dry.rowsWritten, 0])
  })

  it('the CLI: import --dry-run and --delete', async () => {
    const a = await repoWithCommit(1)
    const {dir} = await sidecarLessFolder(a, 10)
    const before = dumpDatabase(a.db)
    const dry = cli(a.dir, ['import', dir, '--dry-run'])
    expect(dry.code, dry.stderr).to.equal(0)
    expect(dry.stdout).to.match(/Dry run: .*additively.*0 tiles added, 1 modified, 0 deleted; 1 rows written, 0 deleted\. Nothing was written\./)
    expect(dumpDatabase(a.db)).to.deep.equal(before)
    const del = cli(a.dir, ['import', dir, '--delete'])
    expect(del.code, del.stderr).to.equal(0)
    expect(del.stdout).to.match(/20 deleted/)
    expect(tileCount(a.db)).to.equal(10)
  })
})
