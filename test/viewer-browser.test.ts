import {expect} from 'chai'

import {PNG} from 'pngjs'
import type {Browser, Page} from 'playwright-core'

import {hashBytes} from '../src/core/hash.js'
import {initRepository} from '../src/ops/init.js'
import type {ChangeSet} from '../src/snapshot/change-set.js'
import {type RunningServer, startServer} from '../src/viewer/server.js'
import {Workspace} from '../src/workspace/workspace.js'
import {launchChromium, makeViewerRepo, outputFile, type TileMask, type ViewerRepo} from './support/browser.js'
import {cliJson} from './support/cli.js'
import {makeProject, withDb} from './support/fixtures.js'
import {BACKGROUND, KIND_COLOURS, NO_IMAGE, pngPixels, same, screenOf, screenshot, waitFor, waitIdle} from './support/screen.js'

type Tiles = Array<[number, number, Record<string, string | null>]>

describe('viewer in chromium: map, compare, tile history (Leaflet)', function () {
  this.timeout(300_000)
  let repo: ViewerRepo
  let server: RunningServer
  let browser: Browser
  let page: Page
  const pageErrors: string[] = []
  // Wider than any revision's tiles, so that absent tiles are checked too.
  const BOX: [number, number, number, number] = [-13, -8, 15, 7]
  const pngCache = new Map<string, Awaited<ReturnType<typeof pngPixels>>>()

  async function tilesAt(rev: string): Promise<Tiles> {
    const r = await fetch(`${server.url}api/tiles?rev=${encodeURIComponent(rev)}&bbox=${BOX.join(',')}`)
    return ((await r.json()) as {tiles: Tiles}).tiles
  }

  async function png(id: string): Promise<Awaited<ReturnType<typeof pngPixels>>> {
    let p = pngCache.get(id)
    if (!p) {
      p = await pngPixels(Buffer.from(await (await fetch(`${server.url}api/object/${id}.png`)).arrayBuffer()))
      pngCache.set(id, p)
    }
    return p
  }

  /** The screen pixel showing source pixel (sx, sy) of a 16 px tile drawn at `t`. */
  const sourcePixel = (t: {x: number; y: number; size: number}, sx: number, sy: number): [number, number] => [t.x + (sx + 0.5) * t.size / 16, t.y + (sy + 0.5) * t.size / 16]

  before(async () => {
    repo = await makeViewerRepo()
    server = await startServer(repo.ws, {port: 0, warm: false})
    browser = await launchChromium()
    // The page forbids eval; the test's own string predicates need it.
    page = await browser.newPage({viewport: {width: 1600, height: 900}, bypassCSP: true})
    page.on('pageerror', (e) => pageErrors.push(e.message))
  })
  afterEach(() => {
    expect(pageErrors, 'errors in the page').to.deep.equal([])
  })
  after(async () => {
    await browser?.close()
    await server?.close()
  })

  async function open(query: string): Promise<void> {
    await page.goto(`${server.url}?${query}`)
    await waitFor(page, `document.body.dataset.mapState === 'ready'`)
    await waitIdle(page)
  }

  it('the map of each revision and of the working database shows exactly its tiles, pixel for pixel, in either layer', async () => {
    const revisions: Array<[string, string]> = [['HEAD~2', repo.commits[0]], ['HEAD~1', repo.commits[1]], ['HEAD', repo.commits[2]], ['working', 'working']]
    for (const [rev, id] of revisions) {
      const tiles = new Map((await tilesAt(rev)).map(([x, y, ids]) => [`${x},${y}`, ids]))
      const masks = new Map(repo.tilesAt[id].map((t: TileMask) => [`${t[0]},${t[1]}`, t[2]]))
      expect([...tiles.keys()].sort()).to.deep.equal([...masks.keys()].sort())
      for (const layer of ['generation', 'render']) {
        // Zoom -3: 32 px per tile, each 16 px tile enlarged pixel for pixel from its own PNG.
        await open(`view=map&rev=${encodeURIComponent(rev)}&layer=${layer}&x=1&y=0&z=-3`)
        expect(await page.evaluate('document.body.dataset.mapRevision')).to.equal(id)
        const shot = await screenshot(page)
        for (let y = BOX[1]; y <= BOX[3]; y++) {
          for (let x = BOX[0]; x <= BOX[2]; x++) {
            const t = await screenOf(page, x, y)
            expect(t.size).to.equal(32)
            const ids = tiles.get(`${x},${y}`)
            const [sx, sy] = sourcePixel(t, 4, 8)
            const shown = shot.at(sx, sy)
            const what = `${rev} ${layer} ${x},${y}`
            if (!ids) expect(shown, `${what}: no tile`).to.deep.equal(BACKGROUND)
            else if (!ids[layer]) expect(shown, `${what}: no image in this layer`).to.deep.equal(NO_IMAGE)
            else expect(shown, what).to.deep.equal((await png(ids[layer]!)).at(4, 8))
          }
        }
      }
    }
    await open(`view=map&rev=HEAD&layer=generation`)
    await page.screenshot({path: outputFile('viewer-map.png')})
  })

  it('zoomed in to zoom 0 a tile is its stored PNG, and Leaflet enlarges it pixel for pixel beyond', async () => {
    const ids = (await tilesAt('HEAD')).find(([x, y]) => x === 3 && y === 2)![2]
    const source = await png(ids.generation!)
    for (const zoom of [0, 2]) {
      await open(`view=map&rev=HEAD&layer=generation&x=3&y=2&z=${zoom}`)
      const t = await screenOf(page, 3, 2)
      expect(t.size).to.equal(256 * 2 ** zoom)
      const shot = await screenshot(page)
      for (const [sx, sy] of [[0, 0], [7, 9], [15, 15], [4, 12]]) {
        const [px, py] = sourcePixel(t, sx, sy)
        if (px < 0 || py < 0 || px >= 1180 || py >= 851) continue
        expect(shot.at(px, py), `zoom ${zoom} pixel ${sx},${sy}`).to.deep.equal(source.at(sx, sy))
      }
    }
  })

  it('compare side by side: before and after, every change outlined by kind as `tilesync diff --json` reports it, in both', async () => {
    for (const [from, to, args] of [['HEAD~2', 'HEAD~1', ['diff', 'HEAD~2', 'HEAD~1']], ['HEAD~1', 'HEAD', ['diff', 'HEAD~1', 'HEAD']], ['HEAD', 'working', ['diff', 'HEAD']]] as const) {
      const expected = cliJson<{changes: ChangeSet}>(repo.dir, [...args]).changes.tiles.map((t) => `${t.x},${t.y}:${t.status}`).sort()
      await open(`view=compare&from=${from}&to=${to}&layer=generation&x=1&y=0&z=-4`)
      expect(await page.evaluate('document.body.dataset.compareState')).to.equal('ready')
      // Every modified tile here is a different picture: the verdicts leave them "modified".
      await waitFor(page, `document.body.dataset.perceptualState === 'ready'`)
      await waitIdle(page)
      const shot = await screenshot(page)
      for (const pane of [0, 1]) {
        const outlined: string[] = []
        for (let y = BOX[1]; y <= BOX[3]; y++) {
          for (let x = BOX[0]; x <= BOX[2]; x++) {
            const t = await screenOf(page, x, y, pane)
            // The middle of the tile's left frame edge: a kind's colour only where it changed.
            const shown = shot.at(t.x + 1, t.y + t.size / 2)
            for (const [kind, colour] of Object.entries(KIND_COLOURS)) if (same(shown, colour)) outlined.push(`${x},${y}:${kind}`)
          }
        }
        expect(outlined.sort(), `${from}..${to} pane ${pane}`).to.deep.equal(expected)
      }
      const listed = await page.$$eval('#changes li', (items) => items.map((li) => `${li.getAttribute('data-x')},${li.getAttribute('data-y')}:${li.getAttribute('data-kind')}`))
      expect(listed.sort()).to.deep.equal(expected)
      const legend = await page.$$eval('#legend [data-kind]', (items) => items.map((i) => [i.getAttribute('data-kind'), i.textContent]))
      for (const kind of ['added', 'modified', 'deleted']) expect(legend).to.deep.include([kind, `${kind} ${expected.filter((e) => e.endsWith(`:${kind}`)).length}`])
    }
    // Zoomed in on a modified tile: the old image on the left, the new one on the right.
    const old = (await tilesAt('HEAD~2')).find(([x, y]) => x === 0 && y === 0)![2].generation!
    const now = (await tilesAt('HEAD~1')).find(([x, y]) => x === 0 && y === 0)![2].generation!
    expect(old).not.to.equal(now)
    await open('view=compare&from=HEAD~2&to=HEAD~1&layer=generation&x=0&y=0&z=0')
    const shot = await screenshot(page)
    for (const [pane, id] of [[0, old], [1, now]] as const) {
      const t = await screenOf(page, 0, 0, pane)
      expect(t.size).to.equal(256)
      for (const [sx, sy] of [[4, 8], [10, 3], [7, 7]]) expect(shot.at(...sourcePixel(t, sx, sy)), `pane ${pane} ${sx},${sy}`).to.deep.equal((await png(id)).at(sx, sy))
    }
    await page.screenshot({path: outputFile('viewer-compare.png')})
  })

  it('a change of a kind the page does not know (as a newer server may send) is outlined in the neutral style and named in the legend', async () => {
    // What a newer server may send: the same diff, one change with a kind this page has no style for.
    await page.route('**/api/diff?*', async (route) => {
      const response = await route.fetch()
      const body = (await response.json()) as {changes: {tiles: Array<{x: number; y: number; kind?: string}>}}
      for (const t of body.changes.tiles) if (t.x === 1 && t.y === 0) t.kind = 'upscaled'
      await route.fulfill({response, json: body})
    })
    try {
      await open('view=compare&from=HEAD~2&to=HEAD~1&layer=generation&x=1&y=0&z=-2')
      const t = await screenOf(page, 1, 0, 1)
      const shot = await screenshot(page)
      // A dashed frame: along its left edge, some pixels are the neutral colour, none a known kind's.
      const edge = Array.from({length: t.size - 4}, (_, i) => shot.at(t.x + 1, t.y + 2 + i))
      expect(edge.some((p) => same(p, [0x69, 0x41, 0xc6, 255]))).to.equal(true)
      expect(edge.some((p) => Object.values(KIND_COLOURS).some((c) => same(p, c)))).to.equal(false)
      const legend = await page.$$eval('#legend [data-kind]', (items) => items.map((i) => [i.getAttribute('data-kind'), i.textContent]))
      expect(legend).to.deep.include(['upscaled', 'upscaled 1'])
      expect(legend).to.deep.include(['modified', 'modified 3'])
      expect(await page.$eval('#changes li[data-x="1"][data-y="0"]', (li) => li.getAttribute('data-kind'))).to.equal('upscaled')
    } finally {
      await page.unroute('**/api/diff?*')
    }
  })

  it('the two sides pan and zoom together, whichever is moved (mouse drag, wheel)', async () => {
    await open('view=compare&from=HEAD~2&to=HEAD~1&layer=generation&x=0&y=0&z=-3')
    const centres = async (): Promise<Array<{lat: number; lng: number; zoom: number}>> => page.evaluate('window.tilesync.panes.map((p) => ({lat: p.map.getCenter().lat, lng: p.map.getCenter().lng, zoom: p.map.getZoom()}))') as Promise<Array<{lat: number; lng: number; zoom: number}>>
    const before = await centres()
    const right = (await page.locator('#map-b').boundingBox())!
    await page.mouse.move(right.x + 300, right.y + 300)
    await page.mouse.down()
    await page.mouse.move(right.x + 364, right.y + 332, {steps: 6})
    await page.mouse.up()
    // Let Leaflet's inertia come to rest.
    await waitFor(page, 'window.tilesync.panes.every((p) => !p.map._panAnim || !p.map._panAnim._inProgress)')
    await waitIdle(page)
    const panned = await centres()
    // Dragged 64 px right and 32 down at 32 px per tile: at least two tiles left and one up (Leaflet's inertia may carry it further).
    expect(before[1].lng - panned[1].lng).to.be.at.least(1.9)
    expect(before[1].lat - panned[1].lat).to.be.at.least(0.9)
    // The same view on both sides, to the pixel (Leaflet pans by whole pixels).
    const samePlace = (a: {lat: number; lng: number; zoom: number}, b: {lat: number; lng: number; zoom: number}): void => {
      expect(a.zoom).to.equal(b.zoom)
      const px = 2 ** -a.zoom / 256
      expect(a.lat).to.be.closeTo(b.lat, px + 1e-9)
      expect(a.lng).to.be.closeTo(b.lng, px + 1e-9)
    }
    samePlace(panned[0], panned[1])
    const left = (await page.locator('#map-a').boundingBox())!
    await page.mouse.move(left.x + 200, left.y + 200)
    await page.mouse.wheel(0, -240)
    await waitFor(page, 'window.tilesync.panes[0].map.getZoom() > -3 && !window.tilesync.panes[0].map._animatingZoom')
    await waitIdle(page)
    const zoomed = await centres()
    expect(zoomed[0].zoom).to.be.greaterThan(-3)
    samePlace(zoomed[1], zoomed[0])
  })

  it('swipe: before left of the line, after right of it; dragging the line shows more of the after side', async () => {
    const old = (await tilesAt('HEAD~2')).find(([x, y]) => x === 0 && y === 0)![2].generation!
    const now = (await tilesAt('HEAD~1')).find(([x, y]) => x === 0 && y === 0)![2].generation!
    await open('view=compare&from=HEAD~2&to=HEAD~1&layer=generation&mode=swipe&x=0&y=0&z=0')
    const t = await screenOf(page, 0, 0)
    const line = (await page.locator('#swipe').boundingBox())!
    const lineX = line.x + line.width / 2
    // The line sits on the tile (the map's centre); sample either side of it.
    expect(lineX).to.be.within(t.x + 16, t.x + t.size - 16)
    let shot = await screenshot(page)
    const leftPx = [0, 1, 2].find((sx) => sourcePixel(t, sx, 8)[0] < lineX - 2)!
    const rightPx = [15, 14, 13].find((sx) => sourcePixel(t, sx, 8)[0] > lineX + 2)!
    expect(shot.at(...sourcePixel(t, leftPx, 8))).to.deep.equal((await png(old)).at(leftPx, 8))
    expect(shot.at(...sourcePixel(t, rightPx, 8))).to.deep.equal((await png(now)).at(rightPx, 8))
    await page.screenshot({path: outputFile('viewer-swipe.png')})
    // Drag the line to the left edge of the map: the tile is all "after".
    const map = (await page.locator('#map-a').boundingBox())!
    await page.mouse.move(lineX, line.y + line.height / 2)
    await page.mouse.down()
    await page.mouse.move(map.x + 5, line.y + line.height / 2, {steps: 5})
    await page.mouse.up()
    shot = await screenshot(page)
    expect(shot.at(...sourcePixel(t, leftPx, 8))).to.deep.equal((await png(now)).at(leftPx, 8))
  })

  it('clicking a tile shows its history, each layer at full size, and when comparing its before and after', async () => {
    const diff = cliJson<{changes: ChangeSet}>(repo.dir, ['diff', 'HEAD~2', 'HEAD~1'])
    await open('view=compare&from=HEAD~2&to=HEAD~1&layer=generation&x=0&y=0&z=-2')
    const t = await screenOf(page, 0, 0, 1)
    await page.mouse.click(t.x + t.size / 2, t.y + t.size / 2)
    await waitFor(page, `document.getElementById('panel').dataset.tile === '0,0' && document.getElementById('panel').dataset.state === 'ready'`)
    const history = await page.$$eval('#tile-history li', (items) => items.map((li) => [li.getAttribute('data-commit'), li.getAttribute('data-status')]))
    // The history up to the comparison's newer side.
    expect(history).to.deep.equal([[repo.commits[1], 'modified'], [repo.commits[0], 'added']])
    // Each version says what happened to which layer.
    expect(await page.$eval(`#tile-history li[data-commit="${repo.commits[1]}"] .layer-changes`, (e) => e.textContent)).to.equal('generation modified on tile 0,0')
    const change = diff.changes.tiles.find((c) => c.x === 0 && c.y === 0)!
    const pair = await page.$$eval('#before-after .pair[data-layer="generation"] figure', (figs) => figs.map((f) => f.getAttribute('data-object')))
    expect(pair).to.deep.equal([change.layers[0].old!.id, change.layers[0].new!.id])
    await waitFor(page, `[...document.querySelectorAll('#panel img')].every((i) => i.complete && i.naturalWidth > 0)`)
    // Full size: each layer's stored PNG, shown no smaller than it is (enlarged by a whole factor when small).
    const full = await page.$$eval('#tile-now .layer-full', (divs) => divs.map((d) => {
      const img = d.querySelector('img')!
      return [d.getAttribute('data-layer'), d.querySelector('figure')!.getAttribute('data-object'), img.naturalWidth, img.getBoundingClientRect().width]
    }))
    const now = (await tilesAt('HEAD~1')).find(([x, y]) => x === 0 && y === 0)![2]
    expect(full.map(([l, id]) => [l, id])).to.deep.equal([['render', now.render], ['generation', now.generation]])
    for (const [, , natural, shown] of full) {
      expect(natural).to.equal(16)
      expect((shown as number) % 16).to.equal(0)
      expect(shown).to.be.at.least(16)
    }
    await page.screenshot({path: outputFile('viewer-tile.png')})

    const href = await page.$eval('#tile-history li:last-child a.download', (a) => a.getAttribute('href'))
    const first = await page.request.get(new URL(href!, server.url).href)
    expect(first.status()).to.equal(200)
    expect(hashBytes(await first.body())).to.equal(href!.match(/[0-9a-f]{64}/)![0])

    // The working database's map: the uncommitted version comes first.
    await open('view=map&rev=working&layer=generation')
    await page.evaluate('window.tilesync.openTile(0, 0)')
    await waitFor(page, `document.getElementById('panel').dataset.state === 'ready'`)
    const working = await page.$$eval('#tile-history li', (items) => items.map((li) => li.getAttribute('data-commit')))
    expect(working).to.deep.equal(['working', repo.commits[2], repo.commits[1], repo.commits[0]])
    // A deleted tile can be clicked when comparing too: its history ends with the deletion.
    await open('view=compare&from=HEAD~2&to=HEAD&layer=generation&x=10&y=5&z=-2')
    const q = await screenOf(page, 10, 5, 1)
    await page.mouse.click(q.x + q.size / 2, q.y + q.size / 2)
    await waitFor(page, `document.getElementById('panel').dataset.tile === '10,5' && document.getElementById('panel').dataset.state === 'ready'`)
    const gone = await page.$$eval('#tile-history li', (items) => items.map((li) => [li.getAttribute('data-commit'), li.getAttribute('data-status')]))
    expect(gone).to.deep.equal([[repo.commits[1], 'deleted'], [repo.commits[0], 'added']])
  })

  it('history view lists the commits; a commit opens compared with its parent', async () => {
    await page.goto(`${server.url}?view=history`)
    await waitFor(page, `document.body.dataset.historyState === 'ready'`)
    const rows = await page.$$eval('#commits tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-commit'), tr.children[4].textContent]))
    expect(rows).to.deep.equal([[repo.commits[2], '1'], [repo.commits[1], '6'], [repo.commits[0], String(repo.tilesAt[repo.commits[0]].length)]])
    await page.screenshot({path: outputFile('viewer-history.png')})
    await page.click(`#commits tr[data-commit="${repo.commits[1]}"] button:text("compare")`)
    await waitFor(page, `document.body.dataset.compareState === 'ready'`)
    expect(await page.$$eval('#changes li', (items) => items.length)).to.equal(6)
    expect(new URL(page.url()).searchParams.get('from')).to.equal(repo.commits[0])
  })

  it('before the first commit the page shows the working database', async () => {
    const {dir} = makeProject({width: 5, height: 3, imageSize: 16, seed: 3})
    await initRepository({dir})
    const fresh = await startServer(await Workspace.open(dir), {port: 0, warm: false})
    try {
      await page.goto(fresh.url)
      await waitFor(page, `document.body.dataset.mapState === 'ready'`)
      expect(await page.evaluate('document.body.dataset.mapRevision')).to.equal('working')
      expect(await page.evaluate('window.tilesync.state.index.count')).to.equal(15)
    } finally {
      await fresh.close()
    }
  })

  it('Leaflet\'s own controls: keyboard pans and zooms, the zoom buttons, attribution; the address keeps the view', async () => {
    await open('view=map&rev=HEAD&layer=generation&x=0&y=0&z=-3')
    const view = async (): Promise<{lat: number; lng: number; zoom: number}> => page.evaluate('({lat: window.tilesync.panes[0].map.getCenter().lat, lng: window.tilesync.panes[0].map.getCenter().lng, zoom: window.tilesync.panes[0].map.getZoom()})') as Promise<{lat: number; lng: number; zoom: number}>
    const start = await view()
    await page.focus('#map-a')
    await page.keyboard.press('ArrowRight')
    // Leaflet animates the pan; a zoom key pressed meanwhile would be dropped.
    await waitFor(page, `window.tilesync.panes[0].map.getCenter().lng > ${start.lng} && !(window.tilesync.panes[0].map._panAnim && window.tilesync.panes[0].map._panAnim._inProgress)`)
    await page.keyboard.press('Equal')
    await waitFor(page, `window.tilesync.panes[0].map.getZoom() === -2 && !window.tilesync.panes[0].map._animatingZoom`)
    await page.click('#map-a .leaflet-control-zoom-out')
    await waitFor(page, `window.tilesync.panes[0].map.getZoom() === -3`)
    const attribution = await page.textContent('#map-a .leaflet-control-attribution')
    expect(attribution).to.contain('Leaflet')
    expect(attribution).to.contain(repo.commits[2].slice(0, 10))
    // Keyboard panning moved the centre off tile 0 to the right (80 px: two and a half tiles).
    await waitFor(page, `Number(new URLSearchParams(location.search).get('x')) >= 2 && new URLSearchParams(location.search).get('z') === '-3'`)
    expect(new URL(page.url()).searchParams.get('view')).to.equal('map')
  })
  it('compare marks a modified tile whose image was only re-encoded (same pixels), as `diff --perceptual` does', async () => {
    const [x, y] = [3, 2]
    const before = withDb(repo.db, (d) => d.prepare('SELECT generation FROM quadrants WHERE quadrant_x = ? AND quadrant_y = ?').pluck().get(x, y)) as Buffer
    const again = PNG.sync.write(PNG.sync.read(before), {colorType: 6, deflateLevel: 1})
    expect(again.equals(before)).to.equal(false)
    withDb(repo.db, (d) => d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(again, x, y))
    try {
      const expected = cliJson<{perceptual: {tiles: Array<{key: string; verdict: string}>}}>(repo.dir, ['diff', 'HEAD', '--perceptual'])
      expect(expected.perceptual.tiles.find((t) => t.key === `${x},${y}`)?.verdict).to.equal('pixels-identical')
      await open(`view=compare&from=HEAD&to=working&layer=generation&x=${x}&y=${y}&z=-2`)
      await waitFor(page, `document.body.dataset.perceptualState === 'ready'`)
      await waitIdle(page)
      expect(await page.$eval(`#changes li[data-x="${x}"][data-y="${y}"]`, (li) => li.getAttribute('data-kind'))).to.equal('re-encoded')
      // The other modified tiles of this comparison are different pictures: still "modified".
      const kinds = await page.$$eval('#changes li[data-status="modified"]', (items) => items.map((li) => `${li.getAttribute('data-x')},${li.getAttribute('data-y')}:${li.getAttribute('data-kind')}`))
      for (const k of kinds) if (k !== `${x},${y}:re-encoded`) expect(k.endsWith(':modified'), k).to.equal(true)
      const legend = await page.$$eval('#legend [data-kind]', (items) => items.map((i) => [i.getAttribute('data-kind'), i.textContent]))
      expect(legend).to.deep.include(['re-encoded', 're-encoded (pixels identical) 1'])
      // Outlined in its own dashed colour, in both panes.
      const shot = await screenshot(page)
      for (const pane of [0, 1]) {
        const t = await screenOf(page, x, y, pane)
        const edge = Array.from({length: t.size - 4}, (_, i) => shot.at(t.x + 1, t.y + 2 + i))
        expect(edge.some((p) => same(p, [0x1c, 0x7e, 0xd6, 255])), `pane ${pane}`).to.equal(true)
      }
    } finally {
      withDb(repo.db, (d) => d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(before, x, y))
    }
  })
})
