import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import Database from 'better-sqlite3'
import type {Browser, Page} from 'playwright-core'

import {hashBytes} from '../src/core/hash.js'
import type {ChangeSet} from '../src/snapshot/change-set.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {Workspace} from '../src/workspace/workspace.js'
import {GENERATIONS_SCHEMA} from '../src/sample/generate-database.js'
import {type RunningServer, startServer} from '../src/viewer/server.js'
import {launchChromium, makeViewerRepo, outputFile, type TileMask, type ViewerRepo} from './support/browser.js'
import {cliJson} from './support/cli.js'
import {png, tmpDir} from './support/fixtures.js'

type RGBA = [number, number, number, number]

/**
 * Runs in the page: the canvas pixel at a point inside each tile cell of a box, read back
 * from what was drawn. (fx, fy) is the point within the cell, as fractions of its size.
 */
const SAMPLE = `(([x0, y0, x1, y1, fx, fy]) => {
  const canvas = document.getElementById('map');
  const dpr = canvas.width / canvas.clientWidth;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const out = [];
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) {
    const p = window.tilesync.screenOf(x, y);
    const px = Math.floor((p.x + p.size * fx) * dpr), py = Math.floor((p.y + p.size * fy) * dpr);
    if (px < 0 || py < 0 || px >= canvas.width || py >= canvas.height) throw new Error('tile ' + x + ',' + y + ' is off screen');
    const i = (py * canvas.width + px) * 4;
    out.push([x, y, [data[i], data[i + 1], data[i + 2], data[i + 3]]]);
  }
  return out;
})`

const LOADING: RGBA = [217, 217, 217, 255]
const EMPTY: RGBA = [180, 180, 180, 255]
const STATUS_COLOURS: Record<string, RGBA> = {added: [0x1a, 0x9e, 0x3f, 255], modified: [0xf0, 0x8c, 0x00, 255], deleted: [0xd7, 0x26, 0x3d, 255]}

async function sample(page: Page, box: [number, number, number, number], fx: number, fy: number): Promise<Array<[number, number, RGBA]>> {
  return page.evaluate(`${SAMPLE}(${JSON.stringify([...box, fx, fy])})`)
}

const same = (a: RGBA, b: RGBA): boolean => a.every((v, i) => v === b[i])

async function waitFor(page: Page, expression: string, timeout = 30_000): Promise<void> {
  await page.waitForFunction(expression, undefined, {timeout})
}

describe('viewer in chromium: map, diff mode, tile history', function () {
  this.timeout(240_000)
  let repo: ViewerRepo
  let server: RunningServer
  let browser: Browser
  let page: Page
  const pageErrors: string[] = []
  // Wider than any revision's tiles, so that absent tiles are checked too.
  const BOX: [number, number, number, number] = [-13, -8, 15, 7]

  before(async () => {
    repo = await makeViewerRepo()
    server = await startServer(repo.ws, {port: 0, warm: false})
    browser = await launchChromium()
    // The page forbids eval; the test's own string predicates need it.
    page = await browser.newPage({viewport: {width: 1280, height: 800}, bypassCSP: true})
    page.on('pageerror', (e) => pageErrors.push(e.message))
  })
  afterEach(() => {
    expect(pageErrors, 'errors in the page').to.deep.equal([])
  })
  after(async () => {
    await browser?.close()
    await server?.close()
  })

  async function openMap(rev: string, layer: string, id: string): Promise<void> {
    await page.goto(`${server.url}?view=map&rev=${encodeURIComponent(rev)}&layer=${layer}`)
    await waitFor(page, `document.body.dataset.mapState === 'ready' && document.body.dataset.mapRevision === ${JSON.stringify(id)}`)
    await page.evaluate(`window.tilesync.fitBox(${BOX.join(', ')})`)
  }

  it('the map at each revision and of the working database shows exactly its tiles, layers switchable', async () => {
    const revisions: Array<[string, string]> = [['HEAD~2', repo.commits[0]], ['HEAD~1', repo.commits[1]], ['HEAD', repo.commits[2]], ['working', 'working']]
    for (const [rev, id] of revisions) {
      for (const [layer, bit] of [['generation', 2], ['render', 1]] as const) {
        await openMap(rev, layer, id)
        const expected = new Map(repo.tilesAt[id].map((t: TileMask) => [`${t[0]},${t[1]}`, t[2]]))
        // A quarter in from the left edge: off the cross drawn on tiles without an image.
        const pixels = await sample(page, BOX, 0.25, 0.5)
        const shown: string[] = []
        for (const [x, y, rgba] of pixels) {
          const mask = expected.get(`${x},${y}`)
          if (rgba[3] !== 0) shown.push(`${x},${y}`)
          if (mask === undefined) continue
          expect(rgba[3], `${rev} ${layer} ${x},${y}`).to.equal(255)
          expect(same(rgba, LOADING), `${rev} ${layer} ${x},${y} still loading`).to.equal(false)
          expect(same(rgba, EMPTY), `${rev} ${layer} ${x},${y}: image shown as empty = ${!(mask & bit)}`).to.equal(!(mask & bit))
        }
        expect(shown.sort(), `${rev} ${layer}`).to.deep.equal([...expected.keys()].sort())
      }
    }
    await openMap('HEAD', 'generation', repo.commits[2])
    await page.screenshot({path: outputFile('viewer-map.png')})
  })

  it('diff mode highlights exactly the tiles `tilesync diff --json` reports', async () => {
    for (const [from, to, args] of [['HEAD~2', 'HEAD~1', ['diff', 'HEAD~2', 'HEAD~1']], ['HEAD~1', 'HEAD', ['diff', 'HEAD~1', 'HEAD']], ['HEAD', 'working', ['diff', 'HEAD']]] as const) {
      const expected = cliJson<{changes: ChangeSet}>(repo.dir, [...args]).changes.tiles.map((t) => `${t.x},${t.y}:${t.status}`).sort()
      await page.goto(`${server.url}?view=diff&from=${from}&to=${to}&layer=generation`)
      await waitFor(page, `document.body.dataset.diffState === 'ready'`)
      await page.evaluate(`window.tilesync.fitBox(${BOX.join(', ')})`)
      const frame = await page.evaluate('window.tilesync.frameWidth() / window.tilesync.state.scale') as number
      // The middle of each tile's left frame edge: a status colour only where something changed.
      const pixels = await sample(page, BOX, frame / 2, 0.5)
      const highlighted = pixels.flatMap(([x, y, rgba]) => Object.entries(STATUS_COLOURS).filter(([, c]) => same(rgba, c)).map(([s]) => `${x},${y}:${s}`)).sort()
      expect(highlighted, `${from}..${to}`).to.deep.equal(expected)
      const listed = await page.$$eval('#changes li', (items) => items.map((li) => `${li.getAttribute('data-x')},${li.getAttribute('data-y')}:${li.getAttribute('data-status')}`))
      expect(listed.sort()).to.deep.equal(expected)
    }
  })

  it('clicking a tile shows its history with thumbnails; in diff mode its before and after; any version downloads as PNG', async () => {
    const diff = cliJson<{changes: ChangeSet}>(repo.dir, ['diff', 'HEAD~2', 'HEAD~1'])
    await page.goto(`${server.url}?view=diff&from=HEAD~2&to=HEAD~1&layer=generation`)
    await waitFor(page, `document.body.dataset.diffState === 'ready'`)
    const p = await page.evaluate('window.tilesync.screenOf(0, 0)') as {x: number; y: number; size: number}
    const box = (await page.locator('#map').boundingBox())!
    await page.mouse.click(box.x + p.x + p.size / 2, box.y + p.y + p.size / 2)
    await waitFor(page, `document.getElementById('panel').dataset.tile === '0,0' && document.getElementById('panel').dataset.state === 'ready'`)
    const history = await page.$$eval('#tile-history li', (items) => items.map((li) => [li.getAttribute('data-commit'), li.getAttribute('data-status')]))
    // The history up to the diff's newer side.
    expect(history).to.deep.equal([[repo.commits[1], 'modified'], [repo.commits[0], 'added']])
    const change = diff.changes.tiles.find((t) => t.x === 0 && t.y === 0)!
    const pair = await page.$$eval('#before-after .pair[data-layer="generation"] figure', (figs) => figs.map((f) => f.getAttribute('data-object')))
    expect(pair).to.deep.equal([change.layers[0].old!.id, change.layers[0].new!.id])
    await page.waitForFunction(`[...document.querySelectorAll('#panel img')].every((i) => i.complete && i.naturalWidth > 0)`, undefined, {timeout: 30_000})
    await page.screenshot({path: outputFile('viewer-diff.png')})

    const href = await page.$eval('#tile-history li:last-child a.download', (a) => a.getAttribute('href'))
    const first = await page.request.get(new URL(href!, server.url).href)
    expect(first.status()).to.equal(200)
    expect(hashBytes(await first.body())).to.equal(href!.match(/[0-9a-f]{64}/)![0])

    // The working database's map: the uncommitted version comes first.
    await page.goto(`${server.url}?view=map&rev=working&layer=generation`)
    await waitFor(page, `document.body.dataset.mapState === 'ready'`)
    await page.evaluate('window.tilesync.selectTile(0, 0)')
    await waitFor(page, `document.getElementById('panel').dataset.state === 'ready'`)
    const working = await page.$$eval('#tile-history li', (items) => items.map((li) => li.getAttribute('data-commit')))
    expect(working).to.deep.equal(['working', repo.commits[2], repo.commits[1], repo.commits[0]])
    // A deleted tile can be clicked in diff mode too: its history ends with the deletion.
    await page.goto(`${server.url}?view=diff&from=HEAD~2&to=HEAD&layer=generation`)
    await waitFor(page, `document.body.dataset.diffState === 'ready'`)
    const q = await page.evaluate('window.tilesync.screenOf(10, 5)') as {x: number; y: number; size: number}
    const box2 = (await page.locator('#map').boundingBox())!
    await page.mouse.click(box2.x + q.x + q.size / 2, box2.y + q.y + q.size / 2)
    await waitFor(page, `document.getElementById('panel').dataset.tile === '10,5' && document.getElementById('panel').dataset.state === 'ready'`)
    const gone = await page.$$eval('#tile-history li', (items) => items.map((li) => [li.getAttribute('data-commit'), li.getAttribute('data-status')]))
    expect(gone).to.deep.equal([[repo.commits[1], 'deleted'], [repo.commits[0], 'added']])
  })

  it('history view lists the commits; a commit opens as a diff against its parent', async () => {
    await page.goto(`${server.url}?view=history`)
    await waitFor(page, `document.body.dataset.historyState === 'ready'`)
    const rows = await page.$$eval('#commits tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-commit'), tr.children[4].textContent]))
    expect(rows).to.deep.equal([[repo.commits[2], '1'], [repo.commits[1], '6'], [repo.commits[0], String(repo.tilesAt[repo.commits[0]].length)]])
    await page.screenshot({path: outputFile('viewer-history.png')})
    await page.click(`#commits tr[data-commit="${repo.commits[1]}"] button:text("diff")`)
    await waitFor(page, `document.body.dataset.diffState === 'ready'`)
    expect(await page.$$eval('#changes li', (items) => items.length)).to.equal(6)
    expect(new URL(page.url()).searchParams.get('from')).to.equal(repo.commits[0])
  })

  it('pans by dragging and zooms with the wheel; zoomed in, single tiles are drawn from larger thumbnails', async () => {
    await page.goto(`${server.url}?view=map&rev=HEAD&layer=generation`)
    await waitFor(page, `document.body.dataset.mapState === 'ready'`)
    const box = (await page.locator('#map').boundingBox())!
    const before = await page.evaluate('({px: window.tilesync.state.px, py: window.tilesync.state.py, scale: window.tilesync.state.scale})') as {px: number; py: number; scale: number}
    await page.mouse.move(box.x + 300, box.y + 300)
    await page.mouse.down()
    await page.mouse.move(box.x + 380, box.y + 340, {steps: 5})
    await page.mouse.up()
    const panned = await page.evaluate('({px: window.tilesync.state.px, py: window.tilesync.state.py})') as {px: number; py: number}
    expect([Math.round(panned.px - before.px), Math.round(panned.py - before.py)]).to.deep.equal([80, 40])
    const hires = page.waitForResponse((r) => r.url().includes('/api/thumb/256/'), {timeout: 30_000})
    for (let i = 0; i < 12; i++) await page.mouse.wheel(0, -300)
    const zoomed = await page.evaluate('window.tilesync.state.scale') as number
    expect(zoomed).to.be.greaterThan(96)
    expect((await hires).status()).to.equal(200)
  })

  it('a map of 10,000 tiles appears in about a second from cached sprites, in a few dozen requests', async () => {
    const dir = tmpDir('viewer-10k')
    const db = path.join(dir, 'generations', 'v01', 'quadrants.db')
    fs.mkdirSync(path.dirname(db), {recursive: true})
    const d = new Database(db)
    d.exec(GENERATIONS_SCHEMA)
    const images = Array.from({length: 64}, (_, i) => png(1000 + i))
    const insert = d.prepare('INSERT INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, render, generation) VALUES (?, ?, 0, 0, 0, 0, 0, ?, ?)')
    d.transaction(() => {
      for (let y = -50; y < 50; y++) for (let x = -50; x < 50; x++) insert.run(x, y, images[(x * 7 + y * 13 + 700) % 64], images[(x * 5 + y * 3 + 500) % 64])
    })()
    d.close()
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: '10,000 tiles', author: {name: 'A', email: 'a@example.com'}})

    // Start once to make (and cache on disk) the sprites of HEAD, as `serve` does at start.
    let t = Date.now()
    const first = await startServer(ws, {port: 0, warm: true})
    await first.warmed
    const warmMs = Date.now() - t
    await first.close()

    const big = await startServer(await Workspace.open(dir), {port: 0, warm: false})
    const fresh = await browser.newPage({viewport: {width: 1280, height: 800}, bypassCSP: true})
    try {
      const requests: string[] = []
      fresh.on('request', (r) => requests.push(new URL(r.url()).pathname))
      t = Date.now()
      await fresh.goto(big.url)
      await waitFor(fresh, `document.body.dataset.mapState === 'ready'`)
      const ms = Date.now() - t
      const count = await fresh.evaluate('window.tilesync.state.map.count')
      const sprites = requests.filter((r) => r.startsWith('/api/sprite/')).length
      // 8x8 regions of 16x16 tiles; regions whose images repeat share one sprite (same id).
      const distinct = await fresh.evaluate('new Set(window.tilesync.state.map.regions.map((r) => r.sprites.generation)).size')
      const regions = await fresh.evaluate('window.tilesync.state.map.regions.length')
      console.log(`      10,000 tiles: sprites made in ${warmMs} ms; page to full map in ${ms} ms with ${requests.length} requests (${sprites} sprites)`)
      expect(count).to.equal(10_000)
      expect(regions).to.equal(64)
      expect(sprites).to.equal(distinct)
      expect(requests.length).to.be.lessThan(100)
      // Speed is reported above and measured by `npm run bench`, never asserted in tests.
      const pixels = await sample(fresh, [-50, -50, 49, 49], 0.5, 0.5)
      expect(pixels.filter(([, , rgba]) => rgba[3] === 255 && !same(rgba, LOADING)).length).to.equal(10_000)
    } finally {
      await fresh.close()
      await big.close()
    }
  })
})
