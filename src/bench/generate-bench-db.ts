import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {Worker} from 'node:worker_threads'

import Database from 'better-sqlite3'

import {createWorkQueue, GENERATIONS_SCHEMA, hashSeed, RUNTIME_COLUMNS} from '../sample/generate-database.js'

/** Columns the pipeline adds at run time, in the order one of its databases got them. */
const ADDED_COLUMNS = ['flagged', 'water_type', 'is_water', 'water_mask', 'starred', 'dark_mode']

export interface BenchDbOptions {
  quadrants: number
  imageSize: number
  noise: number
  generationRatio: number
  seed: number
}

/**
 * The benchmark database: the real schema, `quadrants` rows on a square-ish grid centred on
 * 0,0 (negative coordinates), every row with a render and most with a generation, the columns
 * the pipeline adds at run time (flags, water classification, and the water_mask and
 * dark_mode image layers on a few tiles), and its work queue table. PNGs encoded on all cores. Kept between runs
 * (keyed by its parameters) because encoding a gigabyte of PNGs takes minutes.
 */
export async function ensureBenchDb(dir: string, o: BenchDbOptions): Promise<{file: string; images: number; bytes: number; reused: boolean}> {
  const key = `q${o.quadrants}-s${o.imageSize}-n${o.noise}-g${o.generationRatio}-r${o.seed}-pipeline2`
  const file = path.join(dir, `bench-${key}.db`)
  const metaFile = `${file}.json`
  if (fs.existsSync(file) && fs.existsSync(metaFile)) return {...JSON.parse(fs.readFileSync(metaFile, 'utf8')), file, reused: true}
  fs.mkdirSync(dir, {recursive: true})
  const tmp = `${file}.tmp`
  fs.rmSync(tmp, {force: true})
  const db = new Database(tmp)
  db.pragma('journal_mode = OFF')
  db.pragma('synchronous = OFF')
  db.exec(GENERATIONS_SCHEMA)
  const width = Math.ceil(Math.sqrt(o.quadrants))
  const cells: Array<{x: number; y: number; layers: number; extra: number}> = []
  for (let i = 0; i < o.quadrants; i++) {
    const x = (i % width) - Math.floor(width / 2)
    const y = Math.floor(i / width) - Math.floor(width / 2)
    const gen = (hashSeed(o.seed, x, y, 9) % 1000) / 1000 < o.generationRatio
    cells.push({x, y, layers: gen ? 2 : 1, extra: hashSeed(o.seed, x, y, 8) % 16})
  }
  const workers = Array.from({length: Math.max(1, os.availableParallelism())}, () => new Worker(new URL('./png-worker.js', import.meta.url), {execArgv: []}))
  const pending = new Map<number, (b: Buffer) => void>()
  for (const w of workers) w.on('message', (m: {id: number; png: Uint8Array}) => pending.get(m.id)!(Buffer.from(m.png.buffer, m.png.byteOffset, m.png.byteLength)))
  let next = 0
  const encode = (seed: number): Promise<Buffer> => new Promise((resolve) => {
    const id = next++
    pending.set(id, (b) => {
      pending.delete(id)
      resolve(b)
    })
    workers[id % workers.length].postMessage({id, size: o.imageSize, seed, noise: o.noise})
  })
  for (const c of ADDED_COLUMNS) db.exec(`ALTER TABLE quadrants ADD COLUMN ${RUNTIME_COLUMNS[c]}`)
  const insert = db.prepare(`INSERT INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, render, generation, notes, flagged, water_type, is_water, water_mask, dark_mode)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  let images = 0
  let bytes = 0
  const batchSize = 32
  try {
    for (let i = 0; i < cells.length; i += batchSize) {
      const batch = cells.slice(i, i + batchSize)
      // A sixteenth of the tiles have a dark_mode image, a sixteenth a water_mask.
      const pngs = await Promise.all(batch.map(async (c) => [
        await encode(hashSeed(o.seed, c.x, c.y, 1)),
        c.layers === 2 ? await encode(hashSeed(o.seed, c.x, c.y, 2)) : null,
        c.extra === 1 ? await encode(hashSeed(o.seed, c.x, c.y, 3)) : null,
        c.extra === 2 ? await encode(hashSeed(o.seed, c.x, c.y, 4)) : null,
      ] as const))
      db.transaction(() => {
        batch.forEach((c, j) => {
          const [render, generation, waterMask, darkMode] = pngs[j]
          const all = [render, generation, waterMask, darkMode].filter((b): b is Buffer => b !== null)
          images += all.length
          bytes += all.reduce((s, b) => s + b.length, 0)
          const water = c.extra < 3 ? 1 : 0
          insert.run(c.x, c.y, 40.7 + c.y * 1e-3, -74 + c.x * 1e-3, Math.floor(c.y / 2), Math.floor(c.x / 2), ((c.y & 1) << 1) | (c.x & 1), render, generation, null,
            c.extra === 15 ? 1 : 0, water ? 'WATER_EDGE' : null, water, waterMask, darkMode)
        })
      })()
      if (process.stderr.isTTY) process.stderr.write(`\rgenerating benchmark database: ${Math.min(i + batchSize, cells.length)}/${cells.length} quadrants`)
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
  db.prepare(`INSERT INTO metadata (key, value) VALUES ('schema_version', '3')`).run()
  createWorkQueue(db, {x0: -Math.floor(width / 2), y0: -Math.floor(width / 2), width, height: Math.ceil(o.quadrants / width), items: Math.max(50, Math.round(o.quadrants / 20)), seed: o.seed})
  db.close()
  fs.renameSync(tmp, file)
  fs.writeFileSync(metaFile, JSON.stringify({images, bytes}))
  if (process.stderr.isTTY) process.stderr.write('\n')
  return {file, images, bytes, reused: false}
}
