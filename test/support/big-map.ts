import Database from 'better-sqlite3'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {commit} from '../../src/ops/commit.js'
import {initRepository} from '../../src/ops/init.js'
import {Workspace} from '../../src/workspace/workspace.js'
import {GENERATIONS_SCHEMA} from '../../src/sample/generate-database.js'
import {DB_REL, png, tmpDir} from './fixtures.js'

export interface BigMap {
  dir: string
  db: string
  ws: Workspace
  /** x0..x1, y0..y1 inclusive. */
  bounds: [number, number, number, number]
  count: number
  head: string
}

/** The image a tile of the big map holds in each layer (16 distinct 16 px PNGs, reused), or null. */
export function bigMapImages(x: number, y: number): {render: Buffer; generation: Buffer | null} {
  const images = bigImages()
  const m = (a: number): number => ((a % 16) + 16) % 16
  return {render: images[m(x * 7 + y * 13)], generation: (x * 3 + y * 5) % 37 === 0 ? null : images[m(x * 5 + y * 3 + 1)]}
}

let cachedImages: Buffer[] | undefined
function bigImages(): Buffer[] {
  cachedImages ??= Array.from({length: 16}, (_, i) => png(2000 + i))
  return cachedImages
}

let made: Promise<BigMap> | undefined

/**
 * A city-sized map: 400 x 250 = 100,000 tiles from x -200 and y -125 (so negative
 * coordinates too), a few distinct tiny PNGs reused so the database is made in a second,
 * committed once. Made once per test run and shared by the files that need it.
 */
export function bigMap(): Promise<BigMap> {
  made ??= (async () => {
    const dir = tmpDir('big-map')
    const db = path.join(dir, DB_REL)
    fs.mkdirSync(path.dirname(db), {recursive: true})
    const d = new Database(db)
    d.exec(GENERATIONS_SCHEMA)
    const insert = d.prepare('INSERT INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, render, generation) VALUES (?, ?, 0, 0, 0, 0, 0, ?, ?)')
    const bounds: [number, number, number, number] = [-200, -125, 199, 124]
    d.transaction(() => {
      for (let y = bounds[1]; y <= bounds[3]; y++) {
        for (let x = bounds[0]; x <= bounds[2]; x++) {
          const i = bigMapImages(x, y)
          insert.run(x, y, i.render, i.generation)
        }
      }
    })()
    d.close()
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    const r = await commit(ws, {message: '100,000 tiles', author: {name: 'City', email: 'city@example.com'}})
    return {dir, db, ws, bounds, count: 100_000, head: r.id!}
  })()
  return made
}
