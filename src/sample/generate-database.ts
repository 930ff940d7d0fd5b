import * as fs from 'node:fs'
import * as path from 'node:path'

import Database from 'better-sqlite3'

import {makeTilePng} from './tile-png.js'

/** The schema the generation pipeline creates (see the project README). */
export const GENERATIONS_SCHEMA = `
CREATE TABLE quadrants (
  quadrant_x INTEGER NOT NULL,
  quadrant_y INTEGER NOT NULL,
  lat REAL NOT NULL,
  lng REAL NOT NULL,
  tile_row INTEGER NOT NULL,
  tile_col INTEGER NOT NULL,
  quadrant_index INTEGER NOT NULL,
  render BLOB,
  generation BLOB,
  is_generated INTEGER GENERATED ALWAYS AS (generation IS NOT NULL) STORED,
  notes TEXT,
  PRIMARY KEY (quadrant_x, quadrant_y)
);
CREATE INDEX idx_quadrants_coords ON quadrants (lat, lng);
CREATE INDEX idx_quadrants_tile ON quadrants (tile_row, tile_col);
CREATE INDEX idx_quadrants_generated ON quadrants (is_generated);
CREATE TABLE metadata (key TEXT PRIMARY KEY, value TEXT);
`

/** The pipeline's work queue, in the same file as the tiles (rewritten every few seconds by the app). */
export const QUEUE_SCHEMA = `
CREATE TABLE generation_queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  item_type TEXT NOT NULL,
  quadrants TEXT NOT NULL,
  model_id TEXT,
  status TEXT NOT NULL DEFAULT 'pending',
  created_at REAL NOT NULL,
  started_at REAL,
  completed_at REAL,
  error_message TEXT,
  result_message TEXT,
  context_quadrants TEXT,
  prompt TEXT,
  negative_prompt TEXT
);
CREATE INDEX idx_generation_queue_status ON generation_queue (status);
`

/**
 * Columns the app adds to `quadrants` with ALTER TABLE ... ADD COLUMN when it first needs
 * them (so their order differs between databases): flags, water classification, and two
 * image layers.
 */
export const RUNTIME_COLUMNS: Record<string, string> = {
  flagged: 'flagged INTEGER DEFAULT 0',
  starred: 'starred INTEGER DEFAULT 0',
  is_reference: 'is_reference INTEGER DEFAULT 0',
  is_water: 'is_water INTEGER DEFAULT 0',
  water_type: 'water_type TEXT',
  water_mask: 'water_mask BLOB',
  dark_mode: 'dark_mode BLOB',
}

export interface GenerateOptions {
  /** Grid width and height in quadrants; the grid is centred on 0,0 so coordinates go negative. */
  width: number
  height: number
  /** Image edge in pixels. */
  imageSize?: number
  /** Fraction of quadrants with a render / with a generation (the rest stay NULL, as when seeded). */
  renderRatio?: number
  generationRatio?: number
  noise?: number
  seed?: number
  /** Items of the work queue table `generation_queue` to create (none: no queue table). */
  queueItems?: number
  /** RUNTIME_COLUMNS to add after the rows are in, in this order, as the app does. */
  runtimeColumns?: string[]
  /** Fraction of tiles given a water_mask / dark_mode image when those columns are added. */
  layerRatio?: number
}

/** Writes a generations database of the real shape with real PNGs. Overwrites `file`. */
export function generateDatabase(file: string, options: GenerateOptions): {quadrants: number; images: number; bytes: number} {
  fs.mkdirSync(path.dirname(path.resolve(file)), {recursive: true})
  fs.rmSync(file, {force: true})
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.exec(GENERATIONS_SCHEMA)
  const size = options.imageSize ?? 64
  const seed = options.seed ?? 1
  const insert = db.prepare(`INSERT INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, render, generation, notes)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  let images = 0
  let bytes = 0
  let quadrants = 0
  const x0 = -Math.floor(options.width / 2)
  const y0 = -Math.floor(options.height / 2)
  const batch = db.transaction((rows: unknown[][]) => {
    for (const r of rows) insert.run(...r)
  })
  let rows: unknown[][] = []
  for (let y = y0; y < y0 + options.height; y++) {
    for (let x = x0; x < x0 + options.width; x++) {
      const h = Math.abs((x * 73856093) ^ (y * 19349663) ^ seed) % 1000 / 1000
      const render = h < (options.renderRatio ?? 1) ? makeTilePng(size, hashSeed(seed, x, y, 1), options.noise) : null
      const generation = h < (options.generationRatio ?? 0.75) ? makeTilePng(size, hashSeed(seed, x, y, 2), options.noise) : null
      for (const b of [render, generation]) if (b) {
        images++
        bytes += b.length
      }
      rows.push([BigInt(x), BigInt(y), 40.7 + y * 0.001, -74.0 + x * 0.001, BigInt(Math.floor(y / 2)), BigInt(Math.floor(x / 2)),
        BigInt(((y & 1) << 1) | (x & 1)), render, generation, h < 0.1 ? `seeded ${x},${y}` : null])
      quadrants++
      if (rows.length >= 200) {
        batch(rows)
        rows = []
      }
    }
  }
  batch(rows)
  db.prepare('INSERT INTO metadata (key, value) VALUES (?, ?), (?, ?)').run(
    'schema_version', '3', 'generation_config', JSON.stringify({model: 'pixel-art-v2', size, seed}),
  )
  images += addRuntimeShape(db, {...options, x0, y0, size, seed})
  if (options.queueItems) createWorkQueue(db, {x0, y0, width: options.width, height: options.height, items: options.queueItems, seed})
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.pragma('journal_mode = DELETE')
  db.close()
  return {quadrants, images, bytes}
}

/**
 * The columns the app adds at run time (ALTER TABLE ADD COLUMN, in the given order) with a
 * few flags and water types set and some tiles given the new image layers. Returns the
 * images added.
 */
function addRuntimeShape(db: Database.Database, o: GenerateOptions & {x0: number; y0: number; size: number; seed: number}): number {
  const cols = o.runtimeColumns ?? []
  for (const c of cols) {
    const def = RUNTIME_COLUMNS[c]
    if (!def) throw new Error(`unknown runtime column ${c}`)
    db.exec(`ALTER TABLE quadrants ADD COLUMN ${def}`)
  }
  let images = 0
  const ratio = o.layerRatio ?? 0.25
  const set = (x: number, y: number, col: string, value: unknown): void => {
    db.prepare(`UPDATE quadrants SET ${col} = ? WHERE quadrant_x = ? AND quadrant_y = ?`).run(value, x, y)
  }
  db.transaction(() => {
    for (let y = o.y0; y < o.y0 + o.height; y++) {
      for (let x = o.x0; x < o.x0 + o.width; x++) {
        const h = (hashSeed(o.seed, x, y, 7) % 1000) / 1000
        if (cols.includes('flagged') && h < 0.05) set(x, y, 'flagged', 1)
        if (cols.includes('starred') && h > 0.95) set(x, y, 'starred', 1)
        if (cols.includes('is_water') && h < 0.2) set(x, y, 'is_water', 1)
        if (cols.includes('water_type') && h < 0.2) set(x, y, 'water_type', h < 0.1 ? 'ALL_WATER' : 'WATER_EDGE')
        if (cols.includes('water_mask') && h < ratio / 2) {
          set(x, y, 'water_mask', makeTilePng(o.size, hashSeed(o.seed, x, y, 3), o.noise))
          images++
        }
        if (cols.includes('dark_mode') && h >= 1 - ratio) {
          set(x, y, 'dark_mode', makeTilePng(o.size, hashSeed(o.seed, x, y, 4), o.noise))
          images++
        }
      }
    }
  })()
  return images
}

/** The work queue table with items as the app writes them: most done, some pending or running, one failed; a few old ones deleted. */
export function createWorkQueue(db: Database.Database, o: {x0: number; y0: number; width: number; height: number; items: number; seed: number}): void {
  const {x0, y0, width, height, items, seed} = o
  db.exec(QUEUE_SCHEMA)
  const insert = db.prepare(`INSERT INTO generation_queue (item_type, quadrants, model_id, status, created_at, started_at, completed_at, error_message, result_message)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  const t0 = 1_733_300_000
  db.transaction(() => {
    for (let i = 0; i < items + 2; i++) {
      const x = x0 + (hashSeed(seed, i, 0, 5) % width)
      const y = y0 + (hashSeed(seed, i, 1, 5) % height)
      const status = i === items - 1 ? 'error' : i >= items - 3 ? (i % 2 ? 'pending' : 'running') : 'done'
      const created = t0 + i * 30.5
      insert.run('generation', JSON.stringify([[x, y]]), 'omni-v1', status, created, status === 'pending' ? null : created + 2.25,
        status === 'done' || status === 'error' ? created + 20.75 : null, status === 'error' ? 'model timed out' : null, status === 'done' ? 'ok' : null)
    }
  })()
  // Finished items are removed after a day: the sequence runs ahead of the rows.
  db.exec('DELETE FROM generation_queue WHERE id <= 2')
}

export function hashSeed(seed: number, x: number, y: number, layer: number): number {
  // Sequential mixing (murmur3's finaliser) so that no two (x, y, layer) share a seed.
  let h = seed >>> 0
  for (const v of [x, y, layer]) {
    h = Math.imul(h ^ (v | 0), 0xcc9e2d51)
    h ^= h >>> 15
    h = Math.imul(h, 0x1b873593)
    h ^= h >>> 13
  }
  return h >>> 0
}
