import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {PNG} from 'pngjs'

import {commit} from '../src/ops/commit.js'
import {diff} from '../src/ops/diff.js'
import {initRepository} from '../src/ops/init.js'
import {startSignatureWarmer} from '../src/ops/signature-warmer.js'
import {duplicateTiles, groupNear, searchPlan, similarTiles} from '../src/ops/similar.js'
import {startServer} from '../src/viewer/server.js'
import {Workspace} from '../src/workspace/workspace.js'
import {RECORD_BYTES, SignatureFile} from '../src/perceptual/signature-file.js'
import {SignatureIndex} from '../src/perceptual/signature-index.js'
import {Signatures} from '../src/perceptual/signatures.js'
import {cli, cliJson} from './support/cli.js'
import {generationOf, setNotes} from './support/edit.js'
import {makeProject, png, tmpDir, withDb} from './support/fixtures.js'

const author = {name: 'Tester', email: 't@example.com'}

function setImage(db: string, x: number, y: number, bytes: Buffer, layer = 'generation'): void {
  withDb(db, (d) => d.prepare(`UPDATE quadrants SET ${layer} = ? WHERE quadrant_x = ? AND quadrant_y = ?`).run(bytes, x, y))
}

/** The same pixels in other bytes: RGBA instead of RGB, another compression level. */
function reencode(bytes: Buffer): Buffer {
  const out = PNG.sync.write(PNG.sync.read(bytes), {colorType: 6, deflateLevel: 1})
  expect(out.equals(bytes)).to.equal(false)
  return out
}

/** One pixel's red channel moved by 3: a different picture that looks the same. */
function onePixel(bytes: Buffer): Buffer {
  const p = PNG.sync.read(bytes)
  const o = (5 * p.width + 5) * 4
  p.data[o] = (p.data[o] + 3) % 256
  return PNG.sync.write(p, {colorType: 2})
}

async function project(): Promise<{dir: string; db: string; ws: Workspace}> {
  const {dir, db} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  // Every tile of interest holds a generation (the generator leaves some NULL).
  for (const [x, y, seed] of [[0, 0, 11], [1, 1, 7], [2, 2, 13], [-1, -1, 21], [-3, -2, 31], [0, -1, 41]]) setImage(db, x, y, png(seed))
  await commit(ws, {message: 'first', author})
  return {dir, db, ws}
}

/** 0,0 re-encoded, 1,1 one pixel changed, 2,2 a different picture, -2,1 only its notes. */
function edit(db: string): void {
  setImage(db, 0, 0, reencode(generationOf(db, 0, 0)!))
  setImage(db, 1, 1, onePixel(generationOf(db, 1, 1)!))
  setImage(db, 2, 2, png(9001))
  setNotes(db, -2, 1, 'looked at')
}

describe('perceptual hashes', function () {
  this.timeout(120_000)

  describe('diff --perceptual', () => {
    const expected = [
      ['0,0', 'pixels-identical'],
      ['1,1', 'nearly-identical'],
      ['2,2', 'changed'],
    ]

    it('splits modified tiles into re-encoded (from the pixels), nearly identical and changed, between commits', async () => {
      const {db, ws} = await project()
      edit(db)
      await commit(ws, {message: 'edits', author})
      const r = await diff(ws, {from: 'HEAD~1', to: 'HEAD', perceptual: {}})
      const p = r.perceptual!
      expect(p.tiles.map((t) => [t.key, t.verdict])).to.deep.equal(expected)
      expect(p.counts).to.deep.equal({pixelsIdentical: 1, nearlyIdentical: 1, changed: 1, noImageChange: 1})
      // Same hash, different pixels: "pixels identical" is never decided from the hash.
      expect(p.tiles[1].layers[0].distance).to.equal(0)
      expect(p.tiles[0].layers[0]).to.include({layer: 'generation', verdict: 'pixels-identical', distance: 0})
      expect(p.tiles[2].layers[0].distance).to.be.greaterThan(p.threshold)
      // 3 tiles, old and new image each.
      expect(p.signatures).to.include({objects: 6, computed: 6, cached: 0})
    })

    it('does the same for the working database, whose new images are read from the database', async () => {
      const {db, ws} = await project()
      edit(db)
      const r = await diff(ws, {perceptual: {}})
      expect(r.to).to.equal('working')
      expect(r.perceptual!.tiles.map((t) => [t.key, t.verdict])).to.deep.equal(expected)
      expect(r.perceptual!.signatures.unreadable).to.equal(0)
    })

    it('from the command line: text, --json, --threshold, and the HTML report marks the same', async () => {
      const {dir, db, ws} = await project()
      edit(db)
      await commit(ws, {message: 'edits', author})
      const text = cli(dir, ['diff', 'HEAD~1', 'HEAD', '--perceptual'])
      expect(text.code, text.stderr).to.equal(0)
      expect(text.stdout).to.include('perceptual: 1 pixels identical (re-encoded), 1 nearly identical (distance <= 10 of 128 bits), 1 changed, 1 with no image changed')
      expect(text.stdout).to.include('= tile 0,0  generation: pixels identical (re-encoded)')
      expect(text.stdout).to.include('~ tile 1,1  generation: nearly identical (distance 0)')
      expect(text.stdout).to.match(/M tile 2,2 {2}generation: changed \(distance \d+\)/)
      const json = cliJson<{perceptual: {threshold: number; counts: Record<string, number>}}>(dir, ['diff', 'HEAD~1', 'HEAD', '--perceptual', '--threshold', '0'])
      expect(json.perceptual.threshold).to.equal(0)
      expect(json.perceptual.counts).to.deep.equal({pixelsIdentical: 1, nearlyIdentical: 1, changed: 1, noImageChange: 1})
      const bad = cli(dir, ['diff', '--perceptual', '--threshold', '500'])
      expect(bad.code).to.equal(1)
      expect(bad.stderr).to.match(/^tilesync: --threshold must be an integer from 0 to 128/)

      const file = path.join(tmpDir('perceptual-report'), 'r.html')
      const html = cli(dir, ['diff', 'HEAD~1', 'HEAD', '--perceptual', '--html', file])
      expect(html.code, html.stderr).to.equal(0)
      const page = fs.readFileSync(file, 'utf8')
      for (const [key, verdict] of expected) {
        const [x, y] = key.split(',')
        expect(page).to.match(new RegExp(`<article class="tile modified" id="tile_${x}_${y}"[^>]*data-perceptual="${verdict}"`))
        expect(page).to.match(new RegExp(`<a class="cell modified ${verdict} [^"]*" href="#tile_${x}_${y}"[^>]*data-perceptual="${verdict}"`))
      }
      expect(page).to.include('data-pixels-identical="1" data-nearly-identical="1" data-changed="1"')
      expect(page).to.include('re-encoded (pixels identical)')
      // Without --perceptual the report has no such marks.
      const plain = path.join(path.dirname(file), 'plain.html')
      expect(cli(dir, ['diff', 'HEAD~1', 'HEAD', '--html', plain]).code).to.equal(0)
      expect(fs.readFileSync(plain, 'utf8')).to.not.include('data-perceptual')
    })
  })

  describe('similar', () => {
    it('finds a planted re-encoding and a planted near-duplicate first, with their distance', async () => {
      const {db, ws} = await project()
      const source = generationOf(db, -1, -1)!
      setImage(db, 2, 1, onePixel(source))
      setImage(db, 0, 2, reencode(source))
      await commit(ws, {message: 'plant', author})
      const r = await similarTiles(ws, {tile: [-1, -1], limit: 3})
      expect(r.tile).to.include({x: -1, y: -1, layer: 'generation'})
      expect(r.matches.map((m) => [m.x, m.y, m.samePixels])).to.deep.equal([[0, 2, true], [2, 1, false], [r.matches[2].x, r.matches[2].y, false]])
      expect(r.matches[0].distance).to.equal(0)
      expect(r.matches[1].distance).to.be.at.most(10)
      expect(r.matches[2].distance).to.be.greaterThan(20)
      // Every other generation image at HEAD was compared.
      const generations = withDb(db, (d) => (d.prepare('SELECT count(*) AS n FROM quadrants WHERE generation IS NOT NULL').get() as {n: number}).n)
      expect(r.compared).to.equal(generations - 1)

      const render = await similarTiles(ws, {tile: [-1, -1], layer: 'render', limit: 2})
      expect(render.tile.layer).to.equal('render')
      expect(render.matches.every((m) => m.layer === 'render' && m.distance > 20)).to.equal(true)
    })

    it('--duplicates groups the planted duplicates of each layer, and nothing else', async () => {
      const {dir, db, ws} = await project()
      const a = generationOf(db, -3, -2)!
      setImage(db, 1, 0, a)
      setImage(db, 2, 2, reencode(a))
      setImage(db, -2, 1, onePixel(a))
      const b = generationOf(db, 0, -1)!
      setImage(db, 1, -1, onePixel(b))
      // The same picture in two layers is not a duplicate: layers are compared with themselves.
      setImage(db, 0, 0, b, 'render')
      await commit(ws, {message: 'plant', author})
      const r = await duplicateTiles(ws)
      expect(r.groups.map((g) => [g.layer, g.tiles.map((t) => `${t.x},${t.y}`)])).to.deep.equal([
        ['generation', ['-3,-2', '1,0', '-2,1', '2,2']],
        ['generation', ['0,-1', '1,-1']],
      ])
      expect(r.groups[0].tiles.map((t) => t.samePixels)).to.deep.equal([true, true, false, true])
      expect((await duplicateTiles(ws, {layer: 'render'})).groups).to.deep.equal([])
      expect(r.groups[0].tiles[2].distance).to.be.within(1, 10)
      // --threshold 0: only equal hashes (the copy and the re-encoding).
      expect((await duplicateTiles(ws, {threshold: 0})).groups.map((g) => g.tiles.map((t) => `${t.x},${t.y}`))).to.deep.equal([['-3,-2', '1,0', '2,2']])

      const text = cli(dir, ['similar', '--duplicates'])
      expect(text.code, text.stderr).to.equal(0)
      expect(text.stdout).to.include('2 group(s) of near-identical tiles at HEAD')
      expect(text.stdout).to.include(`generation, 4 tiles: -3,-2  1,0 (same pixels)  -2,1 (distance ${r.groups[0].tiles[2].distance})  2,2 (same pixels)`)
    })

    it('bad input: one line and exit 1', async () => {
      const {dir} = await project()
      const cases: Array<[string[], RegExp]> = [
        [['similar', '--tile', '99,99'], /^tilesync: tile 99,99 has no image at HEAD/],
        [['similar', '--tile', '0,0', '--layer', 'nope'], /^tilesync: no image layer "nope" in quadrants \(the layers are render, generation\)/],
        [['similar', '--tile', 'a,b'], /^tilesync: --tile must be X,Y/],
        [['similar', '--duplicates', '--threshold', '40'], /^tilesync: --threshold must be an integer from 0 to 32/],
      ]
      for (const [args, message] of cases) {
        const r = cli(dir, args)
        expect(r.code, args.join(' ')).to.equal(1)
        expect(r.stderr.trim().split('\n')).to.have.length(1)
        expect(r.stderr).to.match(message)
      }
      const none = cli(dir, ['similar'])
      expect(none.code).to.equal(1)
      expect(none.stderr).to.match(/^tilesync: exactly one of the following must be provided: --duplicates, --tile/)
    })

    it('a blob that is not an image is remembered as such and left out', async () => {
      const {db, ws} = await project()
      setImage(db, 2, 2, Buffer.from('not a picture'))
      await commit(ws, {message: 'junk', author})
      const r = await similarTiles(ws, {tile: [0, 0], limit: 100})
      expect(r.matches.some((m) => m.x === 2 && m.y === 2)).to.equal(false)
      expect(r.signatures.notImages).to.equal(1)
      const again = await similarTiles(ws, {tile: [0, 0], limit: 100})
      expect(again.signatures).to.include({computed: 0, notImages: 1})
      await expectCode(similarTiles(ws, {tile: [2, 2]}), 'BAD_ARGUMENT')
      const d = await diff(ws, {from: 'HEAD~1', to: 'HEAD', perceptual: {}})
      expect(d.perceptual!.tiles[0]).to.deep.include({key: '2,2', verdict: 'changed'})
      expect(d.perceptual!.tiles[0].layers[0].distance).to.equal(null)
    })
  })

  describe('the duplicate search', () => {
    /** A seeded PRNG (mulberry32), so a failure can be replayed. */
    function rng(seed: number): () => number {
      let a = seed >>> 0
      return () => {
        a = (a + 0x6d2b79f5) >>> 0
        let t = Math.imul(a ^ (a >>> 15), a | 1)
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
        return (t ^ (t >>> 14)) >>> 0
      }
    }

    it('finds exactly the groups an all-pairs comparison finds, for every plan and threshold', () => {
      const next = rng(20)
      const index = new SignatureIndex()
      const hashes: Uint32Array[] = []
      const add = (h: Uint32Array): void => {
        hashes.push(h)
        index.set((hashes.length).toString(16).padStart(64, '0'), {hash: h, pixels: Buffer.alloc(16, hashes.length & 0xff), width: 1, height: 1})
      }
      // Random hashes (far apart), and clusters: copies of a centre with up to 14 bits flipped,
      // some of them in one piece of the hash (the hardest case for a piece-wise search).
      for (let i = 0; i < 600; i++) add(Uint32Array.from([next(), next(), next(), next()]))
      for (let c = 0; c < 40; c++) {
        const centre = Uint32Array.from([next(), next(), next(), next()])
        add(centre)
        for (let k = 0; k < 4; k++) {
          const h = centre.slice()
          const flips = next() % 15
          const base = next() % 128
          for (let f = 0; f < flips; f++) {
            const bit = c % 2 ? (base + f) % 128 : next() % 128
            h[bit >> 5] ^= 1 << (bit & 31)
          }
          add(h)
        }
      }
      const slots = hashes.map((_, i) => index.slotOf((i + 1).toString(16).padStart(64, '0'))!)
      const canon = (groups: number[][]): string[] => groups.map((g) => [...g].sort((a, b) => a - b).join(',')).sort()
      for (const threshold of [0, 1, 3, 4, 6, 8, 10, 12]) {
        // All pairs, joined.
        const parent = slots.map((_, i) => i)
        const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])))
        for (let a = 0; a < slots.length; a++) {
          for (let b = a + 1; b < slots.length; b++) if (index.distance(slots[a], slots[b]) <= threshold) parent[find(b)] = find(a)
        }
        const byRoot = new Map<number, number[]>()
        slots.forEach((_, i) => byRoot.set(find(i), [...(byRoot.get(find(i)) ?? []), i]))
        const expected = canon([...byRoot.values()].filter((g) => g.length > 1))
        const plans = [searchPlan(threshold, slots.length), ...[0, 1, 2].map((radius) => ({radius, chunks: Math.max(Math.floor(threshold / (radius + 1)) + 1, 5)}))]
        for (const plan of plans) {
          expect(canon(groupNear(index, slots, threshold, plan)), `threshold ${threshold}, ${plan.chunks} pieces at radius ${plan.radius}`).to.deep.equal(expected)
        }
        if (threshold === 10) expect(expected.length).to.be.greaterThan(20)
      }
    })
  })

  describe('the cache', () => {
    it('is reused: a second run decodes nothing (similar, --duplicates and diff --perceptual, across processes)', async () => {
      const {dir, db, ws} = await project()
      edit(db)
      await commit(ws, {message: 'edits', author})
      const images = withDb(db, (d) => (d.prepare('SELECT count(DISTINCT generation) AS n FROM quadrants WHERE generation IS NOT NULL').get() as {n: number}).n)
      type Run = {signatures: {computed: number; cached: number; objects: number}}
      const first = cliJson<Run>(dir, ['similar', '--tile', '0,0'])
      expect(first.signatures).to.deep.include({computed: images, cached: 0, objects: images})
      const second = cliJson<Run>(dir, ['similar', '--tile', '1,1'])
      expect(second.signatures).to.deep.include({computed: 0, cached: images})
      // --duplicates also needs the renders: only those are new.
      const dup = cliJson<Run>(dir, ['similar', '--duplicates'])
      expect(dup.signatures.computed).to.equal(dup.signatures.objects - images)
      expect(cliJson<Run>(dir, ['similar', '--duplicates']).signatures.computed).to.equal(0)
      // The old images of the diff are HEAD~1's, already there (unchanged tiles share them, edited ones do not).
      const d1 = cliJson<{perceptual: Run}>(dir, ['diff', 'HEAD~1', 'HEAD', '--perceptual'])
      expect(d1.perceptual.signatures.computed).to.equal(3)
      expect(cliJson<{perceptual: Run}>(dir, ['diff', 'HEAD~1', 'HEAD', '--perceptual']).perceptual.signatures.computed).to.equal(0)
      const file = ws.repo.layout.signatureCache
      expect(fs.statSync(file).size).to.equal((dup.signatures.objects + 3) * RECORD_BYTES)
      // In one process too: the decode counter stays at zero.
      const s = new Signatures(file)
      expect(s.index.size).to.equal(dup.signatures.objects + 3)
      await s.ensure([], () => Promise.reject(new Error('nothing to read')))
      expect(s.decoded).to.equal(0)
    })

    it('the index grows by doubling when signatures come one by one, and to the exact size for a loaded file', () => {
      const index = new SignatureIndex()
      const sig = {hash: Uint32Array.from([1, 2, 3, 4]), pixels: Buffer.alloc(16), width: 1, height: 1}
      const id = (n: number): string => n.toString(16).padStart(64, '0')
      for (let n = 1; n <= 3000; n++) index.set(id(n), sig)
      expect([index.size, index.capacity]).to.deep.equal([3000, 4096])
      const file = path.join(tmpDir('sig-grow'), 'sigs.bin')
      new SignatureFile(file).append(Array.from({length: 3000}, (_, i) => ({id: id(i + 1), signature: sig})))
      const loaded = new SignatureIndex()
      new SignatureFile(file).readNew(loaded)
      expect([loaded.size, loaded.capacity]).to.deep.equal([3000, 3000])
      loaded.set(id(5000), sig)
      expect([loaded.size, loaded.capacity]).to.deep.equal([3001, 6000])
      for (let n = 1; n <= 3000; n += 499) expect(loaded.slotOf(id(n))).to.equal(n - 1)
    })

    it('a torn or damaged record costs only itself; appends after a torn tail still read back', () => {
      const file = path.join(tmpDir('sig-file'), 'cache', 'sigs.bin')
      const sig = (n: number): {id: string; signature: {hash: Uint32Array; pixels: Buffer; width: number; height: number}} => ({
        id: n.toString(16).padStart(64, '0'),
        signature: {hash: Uint32Array.from([n, n * 3, n * 7, n * 11]), pixels: Buffer.alloc(16, n), width: 16 + n, height: 16},
      })
      const writer = new SignatureFile(file)
      writer.append([sig(1), sig(2), sig(3)])
      // A crash mid-append: half a record.
      fs.appendFileSync(file, Buffer.alloc(RECORD_BYTES / 2, 0xab))
      writer.append([sig(4), {id: 'ff'.repeat(32), signature: null}])
      // Damage inside record 2.
      const bytes = fs.readFileSync(file)
      bytes[RECORD_BYTES + 40] ^= 0xff
      fs.writeFileSync(file, bytes)
      const index = new SignatureIndex()
      const stats = new SignatureFile(file).readNew(index)
      expect(stats.records).to.equal(4)
      expect(stats.damagedBytes).to.equal(RECORD_BYTES + RECORD_BYTES / 2)
      expect(index.has(sig(2).id)).to.equal(false)
      for (const n of [1, 3, 4]) {
        const slot = index.slotOf(sig(n).id)!
        expect(index.signature(slot)).to.deep.equal(sig(n).signature)
      }
      expect(index.isImage(index.slotOf('ff'.repeat(32))!)).to.equal(false)
      // Reading on picks up only what was appended since.
      const reader = new SignatureFile(file)
      const again = new SignatureIndex()
      reader.readNew(again)
      writer.append([sig(5)])
      expect(reader.readNew(again).records).to.equal(1)
      expect(again.size).to.equal(5)
    })

    it('the background hook (for serve) fills the cache for HEAD and can be stopped', async () => {
      const {db, ws} = await project()
      const images = withDb(db, (d) => (d.prepare('SELECT count(*) AS n FROM (SELECT render AS i FROM quadrants WHERE render IS NOT NULL UNION SELECT generation FROM quadrants WHERE generation IS NOT NULL)').get() as {n: number}).n)
      const stopped = startSignatureWarmer(ws)
      stopped.stop()
      const early = await stopped.done
      expect(early === null || early.computed < images).to.equal(true)
      const warmer = startSignatureWarmer(ws)
      const stats = await warmer.done
      expect(stats!.objects).to.equal(images)
      expect(new Signatures(ws.repo.layout.signatureCache).index.size).to.equal(images)
      expect((await startSignatureWarmer(ws).done)!.computed).to.equal(0)
      const r = await similarTiles(ws, {tile: [0, 0]})
      expect(r.signatures.computed).to.equal(0)
    })

    it('`serve` fills the cache for HEAD in the background once its map is built', async () => {
      const {db, ws} = await project()
      const images = withDb(db, (d) => (d.prepare('SELECT count(*) AS n FROM (SELECT render AS i FROM quadrants WHERE render IS NOT NULL UNION SELECT generation FROM quadrants WHERE generation IS NOT NULL)').get() as {n: number}).n)
      expect(new Signatures(ws.repo.layout.signatureCache).index.size).to.equal(0)
      const server = await startServer(ws, {port: 0})
      try {
        await server.signed
      } finally {
        await server.close()
      }
      expect(new Signatures(ws.repo.layout.signatureCache).index.size).to.equal(images)
      const r = await similarTiles(ws, {tile: [0, 0]})
      expect(r.signatures.computed).to.equal(0)
    })
  })
})

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p
  } catch (error) {
    expect((error as {code?: string}).code, (error as Error).message).to.equal(code)
    return
  }
  expect.fail(`expected ${code}`)
}
