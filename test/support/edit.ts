import {withDb, png} from './fixtures.js'

/** Sets a tile's generation image (inserting the row if needed); what a pipeline run does. */
export function setGeneration(db: string, x: number, y: number, seed: number): void {
  withDb(db, (d) => {
    const exists = d.prepare('SELECT 1 FROM quadrants WHERE quadrant_x = ? AND quadrant_y = ?').get(x, y)
    if (exists) d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(png(seed), x, y)
    else d.prepare('INSERT INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, generation) VALUES (?, ?, 0, 0, 0, 0, 0, ?)').run(x, y, png(seed))
  })
}

export function setNotes(db: string, x: number, y: number, notes: string | null): void {
  withDb(db, (d) => d.prepare('UPDATE quadrants SET notes = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(notes, x, y))
}

export function generationOf(db: string, x: number, y: number): Buffer | null {
  return withDb(db, (d) => (d.prepare('SELECT generation FROM quadrants WHERE quadrant_x = ? AND quadrant_y = ?').get(x, y) as {generation: Buffer | null} | undefined)?.generation ?? null)
}
