import {parse} from 'csv-parse/sync'

import {TilesyncError} from '../core/errors.js'
import {checkDatasetPath, CSV_PATH, LIMITS, parseImageName} from './layout.js'

/**
 * generations.csv read as a list of image files per tile, whoever wrote it: the user's own
 * earlier export script (`render,quadrant,x,y,hash_render,hash_quadrant`, images in renders/
 * and quadrants/), tilesync's export (the same, plus a column per extra image layer), or the
 * pipeline's export (`x,y,quadrant,hash_quadrant`, images in generations/). Every column C
 * that has a `hash_C` beside it is an image layer; its cells are `<folder>/<x>_<y>_<md5-8>.png`
 * (Python's {:04d}, so -12 is "-012"), and the name must agree with the line's x, y and hash.
 */

/** The tile table's column for a CSV column: the user's names for the standard shape, else the same name. */
const CSV_TO_COLUMN: Record<string, string> = {render: 'render', quadrant: 'generation'}

export function columnOfCsv(csvColumn: string): string {
  return CSV_TO_COLUMN[csvColumn] ?? csvColumn
}

export interface XYLayerFile {
  /** Tile table column the image belongs to. */
  column: string
  /** Dataset path, e.g. quadrants/-012_0007_a1b2c3d4.png. */
  path: string
  /** The first 8 hex digits of the image's MD5, as its name and the CSV give it. */
  hash: string
}

export interface XYEntry {
  /** 1-based line of generations.csv, for messages. */
  line: number
  x: bigint
  y: bigint
  files: XYLayerFile[]
}

export interface XYCsv {
  /** Tile table columns the CSV has images for, in header order. */
  columns: string[]
  entries: XYEntry[]
}

/**
 * Parses generations.csv strictly. Throws BAD_DATASET naming the line for a malformed CSV,
 * a coordinate that is not an integer, a path that is not a layout image name, a name that
 * disagrees with its line's x, y or hash, a path given without its hash (or the reverse), or
 * a tile listed twice. HOSTILE_PATH for a path that leaves the dataset.
 */
export function parseXYCsv(bytes: Buffer, label: string): XYCsv {
  const where = `${label}: ${CSV_PATH}`
  const bad = (why: string) => new TilesyncError('BAD_DATASET', `${where}: ${why}`, {hint: 'the dataset was damaged or tampered with; nothing was changed'})
  let records: string[][]
  try {
    records = parse(bytes, {bom: true, skip_empty_lines: true, max_record_size: 1 << 20, relax_column_count: true, to: LIMITS.csvRows + 2}) as string[][]
  } catch (err) {
    throw bad(`malformed CSV (${String((err as Error).message).replace(/\s+/g, ' ').slice(0, 160)})`)
  }
  if (records.length === 0) throw bad('no header line')
  if (records.length - 1 > LIMITS.csvRows) throw bad(`more than ${LIMITS.csvRows} tiles`)
  const header = records[0].map((h) => h.trim())
  const xi = header.indexOf('x')
  const yi = header.indexOf('y')
  if (xi < 0 || yi < 0) throw bad('the header has no "x" and "y" columns (expected render,quadrant,x,y,hash_render,hash_quadrant)')
  const layers = header.flatMap((h, i) => {
    if (h === 'x' || h === 'y' || h.startsWith('hash_')) return []
    const hi = header.indexOf(`hash_${h}`)
    return hi < 0 ? [] : [{csv: h, column: columnOfCsv(h), pi: i, hi}]
  })
  if (layers.length === 0) throw bad('the header names no image column with its hash_ column (expected render,quadrant,x,y,hash_render,hash_quadrant)')
  const entries: XYEntry[] = []
  const seen = new Set<string>()
  for (let r = 1; r < records.length; r++) {
    const rec = records[r]
    const line = r + 1
    const at = `${where} line ${line}`
    const refuse = (why: string) => new TilesyncError('BAD_DATASET', `${at}: ${why}`, {hint: 'the dataset was damaged or tampered with; nothing was changed'})
    const int = (text: string | undefined, name: string): bigint => {
      const t = (text ?? '').trim()
      if (!/^-?\d{1,18}$/.test(t)) throw refuse(`${name} "${t.slice(0, 40)}" is not an integer`)
      return BigInt(t)
    }
    const x = int(rec[xi], 'x')
    const y = int(rec[yi], 'y')
    const key = `${x},${y}`
    if (seen.has(key)) throw refuse(`tile ${key} appears twice`)
    seen.add(key)
    const files: XYLayerFile[] = []
    for (const l of layers) {
      const p = (rec[l.pi] ?? '').trim()
      const hash = (rec[l.hi] ?? '').trim()
      if (p === '' && hash === '') continue
      if (p === '' || hash === '') throw refuse(`${l.csv} and hash_${l.csv} must both be given or both be empty`)
      checkDatasetPath(p, at)
      const segs = p.split('/')
      const parsed = segs.length === 2 ? parseImageName(segs[1]) : null
      if (!parsed) throw refuse(`${l.csv} "${p.slice(0, 120)}" is not an image named <x>_<y>_<md5-8>.png in a folder`)
      if (parsed.x !== x || parsed.y !== y) throw refuse(`${p} is named for tile ${parsed.x},${parsed.y}, not ${x},${y}`)
      if (parsed.hash !== hash) throw refuse(`hash_${l.csv} "${hash.slice(0, 20)}" does not match the hash in ${p}`)
      files.push({column: l.column, path: p, hash})
    }
    entries.push({line, x, y, files})
  }
  return {columns: layers.map((l) => l.column), entries}
}
