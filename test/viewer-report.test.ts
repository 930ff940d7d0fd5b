import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {pathToFileURL} from 'node:url'

import type {Browser} from 'playwright-core'
import sharp from 'sharp'

import {hashBytes} from '../src/core/hash.js'
import {commit} from '../src/ops/commit.js'
import type {ChangeSet} from '../src/snapshot/change-set.js'
import {initRepository} from '../src/ops/init.js'
import {Workspace} from '../src/workspace/workspace.js'
import {detailEdge} from '../src/viewer/report.js'
import {RepoView} from '../src/viewer/repo-view.js'
import {launchChromium, makeViewerRepo, outputFile, type ViewerRepo} from './support/browser.js'
import {cli, cliJson} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {makeProject, tmpDir} from './support/fixtures.js'

// Names that exist only inside the page, in functions passed to page.evaluate.
declare const document: {querySelectorAll(selector: string): Iterable<{complete?: boolean; naturalWidth?: number; getAttribute(name: string): string | null}> & {length: number}}
declare function getComputedStyle(element: unknown): {backgroundImage: string}

interface Cell {x: number; y: number; status: string; object: string | null; cls: string}
interface Figure {label: string; object: string | null; src: string | null}
interface Article {x: number; y: number; status: string; rows: Array<{layer: string; changed: boolean; figures: Figure[]}>}

/** Reads the report back: overview cells, the CSS thumbnails, and each changed tile's figures. */
function parseReport(html: string): {cells: Cell[]; css: Map<string, Buffer>; articles: Article[]} {
  const cells: Cell[] = []
  for (const m of html.matchAll(/<(?:a|span) class="(cell [^"]+)"(?: href="[^"]*")? data-x="(-?\d+)" data-y="(-?\d+)" data-status="(\w+)"(?: data-object="([0-9a-f]{64})")?/g)) {
    cells.push({cls: m[1], x: Number(m[2]), y: Number(m[3]), status: m[4], object: m[5] ?? null})
  }
  const css = new Map<string, Buffer>()
  for (const m of html.matchAll(/\.(i\d+)\{background-image:url\(data:image\/webp;base64,([A-Za-z0-9+/=]+)\)\}/g)) css.set(m[1], Buffer.from(m[2], 'base64'))
  const articles: Article[] = []
  for (const m of html.matchAll(/<article class="tile \w+" id="tile_[^"]+" data-x="(-?\d+)" data-y="(-?\d+)" data-status="(\w+)">([\s\S]*?)<\/article>/g)) {
    const rows = [...m[4].matchAll(/<tr data-layer="(\w+)" data-changed="(true|false)">([\s\S]*?)<\/tr>/g)].map((r) => ({
      layer: r[1], changed: r[2] === 'true',
      figures: [...r[3].matchAll(/<figure class="(\w+)(?: none)?"(?: data-object="([0-9a-f]{64})")?>(?:<img src="([^"]+)")?/g)].map((f) => ({label: f[1], object: f[2] ?? null, src: f[3] ?? null})),
    }))
    articles.push({x: Number(m[1]), y: Number(m[2]), status: m[3], rows})
  }
  return {cells, css, articles}
}

function dataUrlBytes(src: string): {type: string; bytes: Buffer} {
  const m = /^data:(image\/\w+);base64,(.+)$/.exec(src)
  if (!m) throw new Error(`not a data URL: ${src.slice(0, 40)}`)
  return {type: m[1], bytes: Buffer.from(m[2], 'base64')}
}

describe('diff --html: the self-contained report', function () {
  this.timeout(180_000)
  let repo: ViewerRepo
  let browser: Browser | undefined

  before(async () => {
    repo = await makeViewerRepo()
  })
  after(async () => browser?.close())

  async function expectReportMatches(args: string[], file: string, fromId: string, toRev: string): Promise<ReturnType<typeof parseReport>> {
    const result = cliJson<{changes: ChangeSet; report: {file: string; bytes: number; tiles: number; changed: number}}>(repo.dir, [...args, '--html', file])
    const plain = cliJson<{changes: ChangeSet}>(repo.dir, args)
    expect(result.changes).to.deep.equal(plain.changes)
    expect(result.report.file).to.equal(path.resolve(repo.dir, file))
    const html = fs.readFileSync(result.report.file, 'utf8')
    expect(result.report.bytes).to.equal(fs.statSync(result.report.file).size)
    const report = parseReport(html)

    // Overview: every tile of the new side plus the deleted ones, each with its status.
    const view = new RepoView(repo.ws)
    const now = await view.tiles(toRev, [-20, -20, 20, 20])
    const changed = new Map(plain.changes.tiles.map((t) => [`${t.x},${t.y}`, t]))
    const expected = now.tiles.map(([x, y, ids]) => ({x, y, status: changed.get(`${x},${y}`)?.status ?? 'unchanged', object: ids.generation ?? ids.render ?? null}))
    for (const t of plain.changes.tiles) {
      if (t.status === 'deleted') expected.push({x: t.x!, y: t.y!, status: 'deleted', object: t.layers.find((l) => l.layer === 'generation')?.old?.id ?? t.layers.find((l) => l.layer === 'render')?.old?.id ?? null})
    }
    const key = (c: {x: number; y: number}): string => `${c.y},${c.x}`
    const sort = <T extends {x: number; y: number}>(a: T[]): T[] => [...a].sort((p, q) => p.y - q.y || p.x - q.x)
    expect(sort(report.cells).map((c) => [c.x, c.y, c.status, c.object])).to.deep.equal(sort(expected).map((c) => [c.x, c.y, c.status, c.object]))
    expect(result.report.tiles).to.equal(expected.length)
    expect(new Set(report.cells.map(key)).size).to.equal(report.cells.length)

    // Each overview thumbnail is a 32 px WebP, one per distinct image.
    for (const c of report.cells.filter((x) => x.object)) {
      const cls = c.cls.split(' ').find((n) => /^i\d+$/.test(n))!
      const meta = await sharp(report.css.get(cls)!).metadata()
      expect([meta.format, meta.width, meta.height]).to.deep.equal(['webp', 32, 32])
    }
    expect(report.css.size).to.equal(new Set(expected.map((c) => c.object).filter(Boolean)).size)

    // Details: exactly the changed tiles, each changed layer before and after as the stored PNG.
    expect(sort(report.articles).map((a) => [a.x, a.y, a.status])).to.deep.equal(sort(plain.changes.tiles.map((t) => ({x: t.x!, y: t.y!, status: t.status}))).map((t) => [t.x, t.y, t.status]))
    expect(result.report.changed).to.equal(plain.changes.tiles.length)
    for (const a of report.articles) {
      const change = changed.get(`${a.x},${a.y}`)!
      expect(a.rows.map((r) => r.layer)).to.deep.equal(['render', 'generation'])
      for (const row of a.rows) {
        const lc = change.layers.find((l) => l.layer === row.layer)
        expect(row.changed, `${a.x},${a.y} ${row.layer}`).to.equal(lc !== undefined)
        if (!lc) {
          expect(row.figures.map((f) => f.label)).to.deep.equal(['unchanged'])
          continue
        }
        expect(row.figures.map((f) => f.label)).to.deep.equal(['before', 'after'])
        for (const [fig, ref] of [[row.figures[0], lc.old], [row.figures[1], lc.new]] as const) {
          expect(fig.object).to.equal(ref?.id ?? null)
          if (!ref) {
            expect(fig.src).to.equal(null)
            continue
          }
          const {type, bytes} = dataUrlBytes(fig.src!)
          expect(type).to.equal('image/png')
          expect(hashBytes(bytes)).to.equal(ref.id)
        }
      }
    }
    expect(html).to.contain(fromId)
    expect(html).not.to.match(/(?:src|href)="(?:https?:)?\/\//)
    return report
  }

  it('between two commits: the right tiles, statuses and images', async () => {
    const file = path.join(tmpDir('report'), 'night-run.html')
    const report = await expectReportMatches(['diff', 'HEAD~2', 'HEAD~1'], file, repo.commits[0], repo.commits[1])
    const statuses = report.cells.filter((c) => c.status !== 'unchanged').map((c) => `${c.x},${c.y}:${c.status}`).sort()
    expect(statuses).to.deep.equal(['-5,-3:modified', '0,0:modified', '1,0:modified', '10,5:deleted', '13,0:added', '2,2:modified'].sort())
    // 2,2 changed a column only: no image changed, the note is named.
    const html = fs.readFileSync(file, 'utf8')
    expect(html).to.match(/id="tile_2_2"[\s\S]*?Other columns changed: notes/)
    fs.copyFileSync(file, outputFile('report-night-run.html'))
  })

  it('against the working database, and the size is reported when written', async () => {
    const file = path.join(tmpDir('report'), 'working.html')
    const report = await expectReportMatches(['diff', 'HEAD'], file, repo.commits[2], 'working')
    expect(report.cells.filter((c) => c.status !== 'unchanged').map((c) => `${c.x},${c.y}:${c.status}`).sort()).to.deep.equal(['0,0:modified', '14,1:added'])
    const human = cli(repo.dir, ['diff', 'HEAD', '--html', file])
    expect(human.code).to.equal(0)
    expect(human.stdout).to.match(new RegExp(`Wrote ${file.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+(\\.\\d)? KiB, 337 tiles, 2 changed\\)`))
  })

  it('embeds images larger than the detail size as downscaled WebP, and large diffs get smaller ones', async () => {
    const {dir, db} = makeProject({width: 2, height: 1, imageSize: 300})
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'big tiles', author: {name: 'A', email: 'a@example.com'}})
    setGeneration(db, 0, 0, 9)
    const file = path.join(dir, 'big.html')
    const r = cliJson<{report: {file: string}}>(dir, ['diff', 'HEAD', '--html', file])
    const report = parseReport(fs.readFileSync(r.report.file, 'utf8'))
    // The old generation and the unchanged render are 300 px; the new generation is 16 px.
    const rows = report.articles[0].rows
    const gen = rows.find((x) => x.layer === 'generation')!
    const render = rows.find((x) => x.layer === 'render')!
    expect(dataUrlBytes(gen.figures[1].src!).type).to.equal('image/png')
    for (const f of [gen.figures[0], render.figures[0]]) {
      const {type, bytes} = dataUrlBytes(f.src!)
      expect(type).to.equal('image/webp')
      const meta = await sharp(bytes).metadata()
      expect([meta.width, meta.height]).to.deep.equal([256, 256])
    }
    expect(fs.readFileSync(r.report.file, 'utf8')).to.contain('(shown at 256 px)')
    expect([detailEdge(10), detailEdge(500), detailEdge(5000)]).to.deep.equal([256, 128, 64])
  })

  it('opens offline in chromium and renders every image', async () => {
    const file = path.join(tmpDir('report'), 'open.html')
    cliJson(repo.dir, ['diff', 'HEAD~2', 'HEAD~1', '--html', file])
    browser = await launchChromium()
    const page = await browser.newPage({viewport: {width: 1200, height: 900}})
    const requests: string[] = []
    page.on('request', (req) => requests.push(req.url()))
    await page.goto(pathToFileURL(file).href)
    await page.waitForLoadState('load')
    const state = await page.evaluate(() => {
      const imgs = [...document.querySelectorAll('img')]
      const cells = [...document.querySelectorAll('.cell')]
      return {
        images: imgs.length,
        broken: imgs.filter((i) => !i.complete || i.naturalWidth === 0).length,
        cells: cells.length,
        thumbed: cells.filter((c) => getComputedStyle(c).backgroundImage.startsWith('url("data:image/webp')).length,
        withObject: cells.filter((c) => c.getAttribute('data-object')).length,
        changed: document.querySelectorAll('article.tile').length,
      }
    })
    expect(state.images).to.be.greaterThan(0)
    expect(state.broken).to.equal(0)
    expect(state.cells).to.equal(repo.tilesAt[repo.commits[1]].length + 1)
    expect(state.thumbed).to.equal(state.withObject)
    expect(state.changed).to.equal(6)
    expect(requests.every((u) => u.startsWith('file:') || u.startsWith('data:')), requests.join(' ')).to.equal(true)
    await page.screenshot({path: outputFile('report.png'), fullPage: false})
    await page.locator('#tile_0_0').scrollIntoViewIfNeeded()
    await page.screenshot({path: outputFile('report-tile.png')})
  })
})
