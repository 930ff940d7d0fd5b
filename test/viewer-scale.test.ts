import {expect} from 'chai'
import {type ChildProcess, spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import type {Browser} from 'playwright-core'

import {commit} from '../src/ops/commit.js'
import {type RunningServer, startServer} from '../src/viewer/server.js'
import type {BuildStatus, PyramidIndex} from '../src/viewer/web/protocol.js'
import {type BigMap, bigMap, bigMapImages} from './support/big-map.js'
import {launchChromium, outputFile} from './support/browser.js'
import {BIN} from './support/cli.js'
import {withDb, png} from './support/fixtures.js'
import {imagesOver, leavesOf, madeBetween, timesLayers} from './support/pyramid-counts.js'
import {pngPixels, screenOf, screenshot, waitFor, waitIdle} from './support/screen.js'

const isImage = (p: string): boolean => /^\/api\/pyramid\/[^/]+\/-?\d+\//.test(p)

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url)
  expect(r.status, url).to.equal(200)
  return (await r.json()) as T
}

function servedUrl(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 60_000)
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /read-only at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    child.stderr!.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)))
  })
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode)
    else child.on('exit', (code) => resolve(code))
  })
}

describe('viewer at city scale: 100,000 tiles', function () {
  this.timeout(600_000)
  let big: BigMap
  let browser: Browser
  let server: RunningServer | undefined

  before(async () => {
    big = await bigMap()
    browser = await launchChromium()
  })
  after(async () => {
    await browser?.close()
    await server?.close()
    // A quarter of a gigabyte: gone now rather than in the run's last hook.
    if (big && !process.env.TILESYNC_KEEP_TMP) fs.rmSync(big.dir, {recursive: true, force: true})
  })

  it('`serve` answers requests while it builds the map, and Ctrl+C or SIGTERM mid-build ends it within the stop bound', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      // From an empty cache each time, so that the whole map is still to be made when the signal comes.
      for (const f of ['', '-wal', '-shm']) fs.rmSync(path.join(big.dir, '.tilesync', 'cache', `pyramid.db${f}`), {force: true})
      const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {cwd: big.dir, stdio: ['ignore', 'pipe', 'pipe']})
      try {
        const url = await servedUrl(child)
        // Wait until HEAD's build is under way and not finished.
        let status: BuildStatus
        for (;;) {
          status = await getJson<BuildStatus>(`${url}api/pyramid/status`)
          const job = status.jobs.find((j) => j.state === 'building')
          if (job && job.done > 0) break
          expect(status.jobs.every((j) => j.state !== 'done'), 'the build finished before it could be interrupted').to.equal(true)
          await new Promise((r) => setTimeout(r, 25))
        }
        // Requests are answered while it builds: every one of them.
        let answered = 0
        for (let i = 0; i < 20; i++) {
          const r = await fetch(url + ['api/refs', 'api/pyramid?rev=HEAD', '', 'api/log?limit=5'][i % 4])
          await r.arrayBuffer()
          if (r.status === 200) answered++
        }
        expect(answered).to.equal(20)
        const during = await getJson<BuildStatus>(`${url}api/pyramid/status`)
        const job = during.jobs.find((j) => j.state === 'building')
        expect(job, 'still building after the requests').not.to.equal(undefined)
        const started = Date.now()
        child.kill(signal)
        const code = await exitOf(child)
        const ms = Date.now() - started
        console.log(`      ${signal} with ${job!.done}/${job!.planned} images of ${job!.layer} made: exited ${code} after ${ms} ms`)
        expect(code).to.equal(0)
        // The server ends its process half a second after the signal at the latest; the rest is the process's own exit on a busy machine.
        expect(ms).to.be.below(3_000)
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL')
      }
    }
  })

  it('once built, the whole map opens in at most 60 image requests, and a zoom to one tile shows that tile\'s pixels', async () => {
    let t = Date.now()
    server = await startServer(big.ws, {port: 0, warm: true})
    await server.warmed
    const built = JSON.parse(((await server.call('pyramidStatus')) as {json: string}).json) as BuildStatus
    console.log(`      pyramid of HEAD finished in ${Date.now() - t} ms here (after the interrupted builds above): ${built.made.total} images made, ${built.made.cells} tile images decoded`)
    const index = await getJson<PyramidIndex>(`${server.url}api/pyramid?rev=HEAD`)
    expect(index.count).to.equal(100_000)
    expect(index.bounds).to.deep.equal(big.bounds)

    const page = await browser.newPage({viewport: {width: 1280, height: 800}, bypassCSP: true})
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    const images: string[] = []
    const failed: string[] = []
    page.on('request', (r) => {
      if (isImage(new URL(r.url()).pathname)) images.push(r.url())
    })
    page.on('response', (r) => {
      if (isImage(new URL(r.url()).pathname) && r.status() !== 200) failed.push(`${r.status()} ${r.url()}`)
    })
    try {
      t = Date.now()
      await page.goto(server.url)
      await waitFor(page, `document.body.dataset.mapState === 'ready'`)
      const openMs = Date.now() - t
      // The whole map is on the screen: its corner tiles are inside the map's box.
      const box = (await page.locator('#map-a').boundingBox())!
      for (const [x, y] of [[big.bounds[0], big.bounds[1]], [big.bounds[2], big.bounds[3]]]) {
        const s = await screenOf(page, x, y)
        expect(s.x).to.be.within(box.x, box.x + box.width)
        expect(s.y).to.be.within(box.y, box.y + box.height)
      }
      const zoom = await page.evaluate('window.tilesync.panes[0].map.getZoom()')
      console.log(`      whole map (zoom ${zoom}): ${openMs} ms from opening the page, ${images.length} image requests`)
      expect(images.length).to.be.within(1, 60)
      expect(failed).to.deep.equal([])
      await page.screenshot({path: outputFile('viewer-city.png')})

      // Zoom to a single tile: its stored PNG, pixel for pixel.
      const [x, y] = [37, -41]
      images.length = 0
      t = Date.now()
      await page.evaluate(`window.tilesync.viewTile(${x}, ${y}, 1)`)
      await waitIdle(page)
      const zoomMs = Date.now() - t
      console.log(`      zoom to tile ${x},${y}: ${zoomMs} ms, ${images.length} image requests`)
      expect(images.length).to.be.within(1, 60)
      expect(failed).to.deep.equal([])
      const tile = await screenOf(page, x, y)
      expect(tile.size).to.equal(512)
      const shot = await screenshot(page)
      const source = await pngPixels(bigMapImages(x, y).generation!)
      for (const [sx, sy] of [[0, 0], [5, 9], [15, 15], [11, 2]]) {
        expect(shot.at(tile.x + (sx + 0.5) * 32, tile.y + (sy + 0.5) * 32), `pixel ${sx},${sy}`).to.deep.equal(source.at(sx, sy))
      }
      // Any screen at any zoom: the images the map holds for what it shows, from the whole map out to the closest zoom.
      const perZoom: string[] = []
      for (let z = index.minZoom - 1; z <= 3; z++) {
        await page.evaluate(`window.tilesync.viewTile(${x}, ${y}, ${z})`)
        await waitIdle(page)
        const shown = await page.evaluate('Object.values(window.tilesync.panes[0].base._tiles).filter((t) => t.current && t.el.tagName === "IMG").length') as number
        perZoom.push(`${z}:${shown}`)
        expect(shown, `zoom ${z}`).to.be.within(1, 60)
      }
      console.log(`      images on screen per zoom: ${perZoom.join(' ')}`)
      expect(failed).to.deep.equal([])
      expect(errors).to.deep.equal([])
    } finally {
      await page.close()
    }
  })

  it('after 100 tiles change, the rebuild makes only the images over the leaves they are in (counted per zoom), decoding only the new images', async () => {
    expect(server, 'the previous test started the server').not.to.equal(undefined)
    const before = JSON.parse(((await server!.call('pyramidStatus')) as {json: string}).json) as BuildStatus
    const changed: Array<[number, number]> = []
    withDb(big.db, (d) => {
      const up = d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?')
      d.transaction(() => {
        for (let i = 0; i < 100; i++) {
          const x = big.bounds[0] + ((i * 37) % 400)
          const y = big.bounds[1] + ((i * 53) % 250)
          up.run(png(5000 + i), x, y)
          changed.push([x, y])
        }
      })()
    })
    await commit(big.ws, {message: '100 tiles regenerated', author: {name: 'City', email: 'city@example.com'}})
    const index = await getJson<PyramidIndex>(`${server!.url}api/pyramid?rev=HEAD`)
    await server!.call('build', 'HEAD')
    const after = JSON.parse(((await server!.call('pyramidStatus')) as {json: string}).json) as BuildStatus
    const made = madeBetween(before, after)
    const leaves = leavesOf(changed)
    // Both layers: a leaf's id (its images' key) changes when any of its tiles does.
    const expected = timesLayers(imagesOver(leaves, index), index.layers.length)
    console.log(`      100 tiles in ${leaves.length} leaves: made ${JSON.stringify(made)} of ${index.levels.reduce((n, l) => n + l.images.length, 0) * index.layers.length} images`)
    expect(made).to.deep.equal(expected)
    // Only the 100 new images were decoded; every other tile's cell came from the cache.
    expect(after.made.cells - before.made.cells).to.equal(100)
  })
})
