import {expect} from 'chai'
import {createHash} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {exportDataset} from '../src/dataset/export-dataset.js'
import {importDataset} from '../src/dataset/import-dataset.js'
import {formatCoord, imageName, parseImageName} from '../src/dataset/layout.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {cli, cliJson} from './support/cli.js'
import {generationOf, setGeneration, setNotes} from './support/edit.js'
import {dumpDatabase, makeProject, png, tmpDir, withDb} from './support/fixtures.js'

const author = {name: 'Tester', email: 't@example.com'}

async function expectCode(p: Promise<unknown>, code: string, match?: RegExp): Promise<Error> {
  try {
    await p
  } catch (error) {
    expect((error as {code?: string}).code, (error as Error).message).to.equal(code)
    if (match) expect((error as Error).message).to.match(match)
    return error as Error
  }
  return expect.fail(`expected ${code}`)
}

async function repoWithCommit(seed = 1): Promise<{ws: Workspace; db: string; dir: string}> {
  const {dir, db} = makeProject({seed})
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  return {ws, db, dir}
}

const md5_8 = (b: Buffer) => createHash('md5').update(b).digest('hex').slice(0, 8)

describe('dataset layout', () => {
  it('names files like Python {:04d}: 4 characters, the minus sign counting as one', () => {
    expect([0, 7, 12, -1, -12, -123, -1234, 12345].map(formatCoord)).to.deep.equal(['0000', '0007', '0012', '-001', '-012', '-123', '-1234', '12345'])
    expect(imageName(-12, 3, 'abcdef01')).to.equal('-012_0003_abcdef01.png')
    expect(parseImageName('-012_0003_abcdef01.png')).to.deep.equal({x: -12n, y: 3n, hash: 'abcdef01'})
    expect(parseImageName('-12_0003_abcdef01.png')).to.equal(null)
    expect(parseImageName('0012_0003_ABCDEF01.png')).to.equal(null)
  })
})

describe('export / import', () => {
  it('export -> import into another database gives it back identical, and writes the documented layout', async () => {
    const a = await repoWithCommit(1)
    setNotes(a.db, 0, 0, 'héllo, "quoted"\nnew line')
    withDb(a.db, (d) => d.prepare('UPDATE quadrants SET lat = ?, tile_row = ? WHERE quadrant_x = 1 AND quadrant_y = 1').run(-0.0, 9007199254740993n))
    await commit(a.ws, {message: 'notes and odd numbers', author})
    const out = path.join(tmpDir('export'), 'ds')
    const e = await exportDataset(a.ws, {dir: out})
    expect(e.tiles).to.equal(30)

    const csv = fs.readFileSync(path.join(out, 'generations.csv'), 'utf8').split('\n')
    expect(csv[0]).to.equal('render,quadrant,x,y,hash_render,hash_quadrant')
    expect(csv.filter(Boolean)).to.have.length(31)
    const render00 = generationOf(a.db, 0, 0) && withDb(a.db, (d) => (d.prepare('SELECT render FROM quadrants WHERE quadrant_x = -3 AND quadrant_y = -2').get() as {render: Buffer}).render)
    const name = `-003_-002_${md5_8(render00 as Buffer)}.png`
    expect(fs.readFileSync(path.join(out, 'renders', name))).to.deep.equal(render00)
    expect(csv.some((l) => l.startsWith(`renders/${name},`) && l.includes(',-3,-2,'))).to.equal(true)
    expect(fs.readFileSync(path.join(out, 'README.md'), 'utf8')).to.match(/\| tiles \| 30 \|/)
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'tilesync', 'manifest.json'), 'utf8'))
    expect(manifest.commit.id).to.equal(await a.ws.resolve('HEAD'))
    expect(fs.readdirSync(path.join(out, 'tilesync', 'rows'))).to.deep.equal(['metadata', 'quadrants'])

    const b = await repoWithCommit(2)
    expect(dumpDatabase(b.db)).to.not.deep.equal(dumpDatabase(a.db))
    const r = await importDataset(b.ws, {dir: out})
    expect(r.mode).to.equal('exact')
    expect(r.commit).to.equal(manifest.commit.id)
    expect(dumpDatabase(b.db)).to.deep.equal(dumpDatabase(a.db))
    expect((await status(b.ws)).clean).to.equal(false)
    const again = await importDataset(b.ws, {dir: out, force: true})
    expect(again.unchanged).to.equal(true)

    // Re-export after 2 tile changes: only those images and the small files change.
    setGeneration(a.db, 0, 0, 901)
    setGeneration(a.db, 5, 5, 902)
    await commit(a.ws, {message: 'two tiles', author})
    const e2 = await exportDataset(a.ws, {dir: out})
    expect(e2.written).to.be.at.most(2 + 1 + 1 + 1 + 2)
    expect(e2.removed).to.equal(0)
    const pruned = await exportDataset(a.ws, {dir: out, prune: true})
    expect(pruned.removed).to.equal(1)
    expect(pruned.written).to.equal(0)
  })

  it('round-trips other shapes: id key with row/col, a rowid table, blob cells outside the tile layers', async () => {
    const make = (dir: string, rows: boolean) => {
      const file = path.join(dir, 'tiles.db')
      withDb(file, (d) => {
        d.exec(`CREATE TABLE tiles (id INTEGER PRIMARY KEY, row INTEGER, col INTEGER, image BLOB, score REAL);
          CREATE TABLE log (msg TEXT, at INTEGER);
          CREATE TABLE tags (a TEXT, b TEXT, v BLOB, PRIMARY KEY (a, b)) WITHOUT ROWID;`)
        if (rows) {
          d.prepare('INSERT INTO tiles VALUES (1, 0, 0, ?, 1.0), (2, -4, 1, NULL, 2.5)').run(png(1))
          d.prepare(`INSERT INTO log VALUES ('a', 1), ('b', 2)`).run()
          d.prepare(`INSERT INTO tags VALUES ('x', 'y', ?)`).run(Buffer.from([1, 2, 3]))
        }
      })
      return file
    }
    const aDir = tmpDir()
    const aDb = make(aDir, true)
    await initRepository({dir: aDir, db: 'tiles.db', table: 'tiles'})
    const a = await Workspace.open(aDir)
    await commit(a, {message: 'one', author})
    const out = path.join(tmpDir('export'), 'ds')
    await exportDataset(a, {dir: out})
    expect(fs.readFileSync(path.join(out, 'generations.csv'), 'utf8').split('\n')[0]).to.equal('image,x,y,hash_image')
    expect(fs.readdirSync(path.join(out, 'image'))).to.have.length(1)
    expect(fs.readdirSync(path.join(out, 'tilesync', 'blobs'))).to.have.length(1)
    const bDir = tmpDir()
    const bDb = make(bDir, false)
    await initRepository({dir: bDir, db: 'tiles.db', table: 'tiles'})
    const b = await Workspace.open(bDir)
    await importDataset(b, {dir: out})
    expect(dumpDatabase(bDb)).to.deep.equal(dumpDatabase(aDb))
  })

  it('imports generations.csv edited with other tools: new image from the CSV, other columns carried over', async () => {
    const a = await repoWithCommit(1)
    const out = path.join(tmpDir('export'), 'ds')
    await exportDataset(a.ws, {dir: out})
    const before = dumpDatabase(a.db)
    const img = png(777)
    const name = `0000_0000_${md5_8(img)}.png`
    fs.writeFileSync(path.join(out, 'quadrants', name), img)
    const csvFile = path.join(out, 'generations.csv')
    const lines = fs.readFileSync(csvFile, 'utf8').split('\n')
    const i = lines.findIndex((l) => /,0,0,/.test(l))
    const cells = lines[i].split(',')
    cells[1] = `quadrants/${name}`
    cells[5] = md5_8(img)
    lines[i] = cells.join(',')
    fs.writeFileSync(csvFile, lines.join('\n'))
    const r = await importDataset(a.ws, {dir: out})
    expect(r.mode).to.equal('edited')
    expect(generationOf(a.db, 0, 0)).to.deep.equal(img)
    const after = dumpDatabase(a.db)
    expect(after.metadata).to.deep.equal(before.metadata)
    expect((await status(a.ws)).changes.tiles.map((t) => [t.key, t.layers.map((l) => l.layer), t.columns])).to.deep.equal([['0,0', ['generation'], []]])
  })

  describe('refuses a hostile or damaged dataset with a clear error, leaving the database untouched', () => {
    let fresh: () => Promise<{dir: string; ws: Workspace; db: string}>
    before(() => {
      fresh = async () => {
        const a = await repoWithCommit(1)
        const dir = path.join(tmpDir('export'), 'ds')
        await exportDataset(a.ws, {dir})
        // A second database the dataset would overwrite.
        setGeneration(a.db, 1, 1, 555)
        await commit(a.ws, {message: 'local work', author})
        return {dir, ws: a.ws, db: a.db}
      }
    })

    const editCsv = (dir: string, fn: (lines: string[]) => void) => {
      const f = path.join(dir, 'generations.csv')
      const lines = fs.readFileSync(f, 'utf8').split('\n')
      fn(lines)
      fs.writeFileSync(f, lines.join('\n'))
    }
    const aPng = (dir: string) => path.join(dir, 'renders', fs.readdirSync(path.join(dir, 'renders'))[0])

    const cases: Array<[string, string, RegExp, (dir: string) => void]> = [
      ['a ../ path in the CSV', 'HOSTILE_PATH', /traversal/, (dir) => editCsv(dir, (l) => {
        l[1] = l[1].replace(/^renders\/[^,]+/, 'renders/../../../etc/passwd')
      })],
      ['an absolute path in the CSV', 'HOSTILE_PATH', /absolute path/, (dir) => editCsv(dir, (l) => {
        l[1] = l[1].replace(/^renders\/[^,]+/, '/etc/passwd')
      })],
      ['an unknown file', 'BAD_DATASET', /unknown file renders\/run\.sh/, (dir) => fs.writeFileSync(path.join(dir, 'renders', 'run.sh'), 'rm -rf /')],
      ['a tampered PNG (same size, other bytes)', 'BAD_DATASET', /does not match the MD5 hash in its name/, (dir) => {
        const f = aPng(dir)
        const b = fs.readFileSync(f)
        b[b.length - 5] ^= 0xff
        fs.writeFileSync(f, b)
      }],
      ['a missing PNG', 'BAD_DATASET', /is missing/, (dir) => fs.rmSync(aPng(dir))],
      ['malformed CSV', 'BAD_DATASET', /malformed CSV/, (dir) => fs.appendFileSync(path.join(dir, 'generations.csv'), '"renders/x.png,1,2\n')],
      ['a CSV line naming another tile', 'BAD_DATASET', /is named for tile/, (dir) => editCsv(dir, (l) => {
        const c = l[1].split(',')
        c[2] = String(Number(c[2]) + 1)
        l[1] = c.join(',')
      })],
      ['an absurd file size', 'BAD_DATASET', /more than the/, (dir) => fs.truncateSync(aPng(dir), 300 * 1024 * 1024)],
      ['a symbolic link', 'HOSTILE_PATH', /symbolic link/, (dir) => {
        const f = aPng(dir)
        fs.rmSync(f)
        fs.symlinkSync('/etc/passwd', f)
      }],
      ['a tampered rows file', 'BAD_DATASET', /does not match the BLAKE3 hash/, (dir) => {
        const f = path.join(dir, 'tilesync', 'rows', 'metadata', fs.readdirSync(path.join(dir, 'tilesync', 'rows', 'metadata'))[0])
        fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace('"3"', '"4"'))
      }],
      ['a schema that smuggles a second statement', 'BAD_DATASET', /schema entry/, (dir) => {
        const f = path.join(dir, 'tilesync', 'manifest.json')
        const m = JSON.parse(fs.readFileSync(f, 'utf8'))
        m.schema[0].sql += '; DROP TABLE metadata'
        fs.writeFileSync(f, JSON.stringify(m))
      }],
    ]
    for (const [what, code, match, damage] of cases) {
      it(what, async () => {
        const {dir, ws, db} = await fresh()
        damage(dir)
        const before = dumpDatabase(db)
        const err = await expectCode(importDataset(ws, {dir, force: true}), code, match)
        expect(err.message.split('\n')).to.have.length(1)
        expect(dumpDatabase(db)).to.deep.equal(before)
      })
    }
  })

  it('the CLI: export and import as subprocesses, with --json and one-line errors', async () => {
    const a = await repoWithCommit(1)
    const out = path.join(tmpDir('cli-export'), 'ds')
    const e = cliJson<{tiles: number; written: number}>(a.dir, ['export', out])
    expect(e.tiles).to.equal(30)
    const b = await repoWithCommit(3)
    const r = cli(b.dir, ['import', out])
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout).to.match(/Imported .*verified.*tilesync commit/)
    expect(dumpDatabase(b.db)).to.deep.equal(dumpDatabase(a.db))
    fs.writeFileSync(path.join(out, 'evil.txt'), 'x')
    const bad = cli(b.dir, ['import', out, '--force'])
    expect(bad.code).to.equal(1)
    expect(bad.stderr.trim().split('\n')).to.have.length(1)
    expect(bad.stderr).to.match(/unknown file evil\.txt/)
    const j = cli(b.dir, ['import', out, '--json'])
    expect(JSON.parse(j.stdout).error.code).to.equal('BAD_DATASET')
  })
})
