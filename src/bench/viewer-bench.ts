/**
 * The viewer's figures for `npm run bench -- --only viewer [--viewer-tiles N]`: on a map of
 * N tiles (default 100,000; 16 px tiles, 64 distinct images, as the viewer's tests use),
 * building a revision's pyramid from an empty cache, rebuilding it after 100 tiles changed
 * and were committed, and, where chromium is installed, the page to the whole map and a zoom
 * to one tile.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import Database from 'better-sqlite3'

import {GENERATIONS_SCHEMA} from '../sample/generate-database.js'
import {makeTilePng} from '../sample/tile-png.js'
import {type RunningServer, startServer} from '../viewer/server.js'
import {Workspace} from '../workspace/workspace.js'
import {median, run, type Sample} from './measure.js'

export interface ViewerBenchContext {
  work: string
  /** Tiles in the map (laid out 8:5). */
  tiles: number
  runs: number
  bin: string
  repoRoot: string
  env: NodeJS.ProcessEnv
  record(kase: string, tool: string, samples: Sample[], extra?: {target?: string; note?: string}): {medianSeconds: number}
}

export async function viewerCases(ctx: ViewerBenchContext): Promise<void> {
  const width = Math.max(1, Math.round(Math.sqrt(ctx.tiles * 1.6)))
  const height = Math.max(1, Math.ceil(ctx.tiles / width))
  const count = width * height
  const label = `${count.toLocaleString('en')} tiles`
  const project = path.join(ctx.work, 'viewer-map')
  const db = path.join(project, 'generations', 'v01', 'quadrants.db')
  fs.rmSync(project, {recursive: true, force: true})
  fs.mkdirSync(path.dirname(db), {recursive: true})
  const images = Array.from({length: 64}, (_, i) => makeTilePng(16, 3000 + i))
  const d = new Database(db)
  d.exec(GENERATIONS_SCHEMA)
  const insert = d.prepare('INSERT INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, render, generation) VALUES (?, ?, 0, 0, 0, 0, 0, ?, ?)')
  const x0 = -Math.floor(width / 2)
  const y0 = -Math.floor(height / 2)
  d.transaction(() => {
    for (let y = y0; y < y0 + height; y++) for (let x = x0; x < x0 + width; x++) insert.run(x, y, images[(((x * 7 + y * 13) % 64) + 64) % 64], images[(((x * 5 + y * 3) % 64) + 64) % 64])
  })()
  d.close()
  run(process.execPath, [ctx.bin, 'init'], project, ctx.env)
  run(process.execPath, [ctx.bin, 'commit', '-m', label], project, ctx.env)

  const builder = path.join(ctx.repoRoot, 'dist', 'src', 'bench', 'pyramid-build.js')
  const build = (cold: boolean): {seconds: number; made: number; planned: number; cells: number} => JSON.parse(run(process.execPath, [builder, project, 'HEAD', ...(cold ? ['--cold'] : [])], project, ctx.env))
  const cold: Sample[] = []
  let planned = 0
  for (let i = 0; i < ctx.runs; i++) {
    const r = build(true)
    cold.push({seconds: r.seconds, maxRssMb: null})
    planned = r.planned
  }
  ctx.record(`viewer: pyramid of ${label}, empty cache`, 'tilesync', cold, {note: `${planned} images, 2 layers`})

  const incremental: Sample[] = []
  const made: number[] = []
  for (let i = 0; i < ctx.runs; i++) {
    changeTiles(db, 100, i, {x0, y0, width, height})
    run(process.execPath, [ctx.bin, 'commit', '-m', `100 tiles, round ${i}`], project, ctx.env)
    const r = build(false)
    incremental.push({seconds: r.seconds, maxRssMb: null})
    made.push(r.made)
  }
  ctx.record('viewer: pyramid after 100 tiles changed', 'tilesync', incremental, {target: '< 2 s', note: `${median(made)} of ${planned} images remade`})

  await pageCases(ctx, project, label)
}

/** Replaces the generation image of `count` tiles spread over the map (new images, a different set per round). */
function changeTiles(db: string, count: number, round: number, map: {x0: number; y0: number; width: number; height: number}): void {
  const d = new Database(db)
  const up = d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?')
  d.transaction(() => {
    for (let i = 0; i < count; i++) {
      const n = round * count + i
      up.run(makeTilePng(16, 900_000 + n), map.x0 + ((n * 37) % map.width), map.y0 + ((n * 53) % map.height))
    }
  })()
  d.close()
}

/** The page in headless chromium, a fresh browser context (empty browser cache) per run. */
async function pageCases(ctx: ViewerBenchContext, project: string, label: string): Promise<void> {
  const chromiumPath = process.env.TILESYNC_CHROMIUM ?? '/usr/bin/chromium'
  let chromium: typeof import('playwright-core').chromium
  try {
    if (!fs.existsSync(chromiumPath)) throw new Error(`no chromium at ${chromiumPath}`)
    chromium = (await import('playwright-core')).chromium
  } catch (error) {
    console.log(`viewer page cases: skipped (${(error as Error).message})`)
    return
  }
  const browser = await chromium.launch({executablePath: chromiumPath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run']})
  let server: RunningServer | undefined
  try {
    server = await startServer(await Workspace.open(project), {port: 0, warm: true})
    await server.warmed
    const open: Sample[] = []
    const zoom: Sample[] = []
    const requests: number[] = []
    for (let i = 0; i < ctx.runs; i++) {
      const context = await browser.newContext({viewport: {width: 1280, height: 800}, bypassCSP: true})
      const page = await context.newPage()
      let images = 0
      page.on('request', (r) => {
        if (/\/api\/pyramid\/[^/]+\/-?\d+\//.test(new URL(r.url()).pathname)) images++
      })
      let t = process.hrtime.bigint()
      await page.goto(server.url)
      await page.waitForFunction(`document.body.dataset.mapState === 'ready'`, undefined, {timeout: 60_000})
      open.push({seconds: Number(process.hrtime.bigint() - t) / 1e9, maxRssMb: null})
      requests.push(images)
      t = process.hrtime.bigint()
      await page.evaluate(`window.tilesync.viewTile(${i}, ${-i}, 0)`)
      await page.waitForFunction('window.tilesync.idle()', undefined, {timeout: 60_000})
      zoom.push({seconds: Number(process.hrtime.bigint() - t) / 1e9, maxRssMb: null})
      await context.close()
    }
    ctx.record(`viewer: page to whole map (${label})`, 'tilesync serve + chromium', open, {target: '< 2 s', note: `${median(requests)} image requests`})
    ctx.record('viewer: zoom to one tile', 'tilesync serve + chromium', zoom, {target: '< 1 s'})
  } finally {
    await server?.close()
    await browser.close()
  }
}
