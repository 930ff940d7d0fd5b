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
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.pragma('journal_mode = DELETE')
  db.close()
  return {quadrants, images, bytes}
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
