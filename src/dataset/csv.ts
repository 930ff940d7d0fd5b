import {parse} from 'csv-parse/sync'

import {TilesyncError} from '../core/errors.js'
import {checkDatasetPath, CSV_PATH, csvHeader, type LayerFolder, LIMITS, parseImageName} from './layout.js'

export interface CsvTile {
  /** 1-based line number, for messages. */
  line: number
  x: bigint
  y: bigint
  /** One path per layer, '' when the tile has no image there. */
  paths: string[]
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

/**
 * Reads generations.csv strictly: a header naming every column the layers need (other columns
 * are ignored), one record per tile with integer x and y, and for each layer either nothing or
 * a path `<folder>/<x>_<y>_<hash>.png` whose x, y match the record and whose hash matches the
 * `hash_*` column. Paths that try to leave the dataset are HOSTILE_PATH; anything else wrong is
 * BAD_DATASET naming the line.
 */
export function parseGenerationsCsv(bytes: Buffer, layers: LayerFolder[], label: string): CsvTile[] {
  const where = `${label}: ${CSV_PATH}`
  const bad = (why: string) => new TilesyncError('BAD_DATASET', `${where}: ${why}`, {hint: 'fix the file (or export again); nothing was changed'})
  if (bytes.length > LIMITS.textBytes) throw bad(`too large (${bytes.length} bytes)`)
  let records: string[][]
  try {
    records = parse(bytes, {bom: true, skip_empty_lines: true, relax_column_count: false, max_record_size: 1 << 20, to: LIMITS.csvRows + 2}) as string[][]
  } catch (err) {
    throw bad(`malformed CSV (${String((err as Error).message).replace(/\s+/g, ' ').slice(0, 160)})`)
  }
  if (records.length === 0) throw bad('no header line')
  if (records.length - 1 > LIMITS.csvRows) throw bad(`more than ${LIMITS.csvRows} tiles`)
  const header = records[0].map((h) => h.trim())
  if (new Set(header).size !== header.length) throw bad('a column name appears twice in the header')
  const col = (name: string): number => {
    const i = header.indexOf(name)
    if (i < 0) throw bad(`the header has no "${name}" column (expected ${csvHeader(layers).join(',')})`)
    return i
  }
  const xi = col('x')
  const yi = col('y')
  const pathCols = layers.map((l) => col(l.csv))
  const hashCols = layers.map((l) => col(`hash_${l.csv}`))
  const seen = new Set<string>()
  const out: CsvTile[] = []
  for (let r = 1; r < records.length; r++) {
    const rec = records[r]
    const line = r + 1
    const at = `${where} line ${line}`
    const int = (text: string, name: string): bigint => {
      if (!/^-?\d{1,19}$/.test(text)) throw new TilesyncError('BAD_DATASET', `${at}: ${name} "${text.slice(0, 40)}" is not an integer`, {hint: 'fix the file; nothing was changed'})
      const v = BigInt(text)
      if (v < INT64_MIN || v > INT64_MAX) throw new TilesyncError('BAD_DATASET', `${at}: ${name} is out of range`)
      return v
    }
    const x = int(rec[xi], 'x')
    const y = int(rec[yi], 'y')
    const key = `${x},${y}`
    if (seen.has(key)) throw new TilesyncError('BAD_DATASET', `${at}: tile ${key} appears twice`, {hint: 'keep one line per tile; nothing was changed'})
    seen.add(key)
    const paths = layers.map((layer, j) => {
      const p = rec[pathCols[j]]
      const hash = rec[hashCols[j]]
      if (p === '') {
        if (hash !== '') throw new TilesyncError('BAD_DATASET', `${at}: hash_${layer.csv} is set but ${layer.csv} is empty`)
        return ''
      }
      checkDatasetPath(p, at)
      const slash = p.indexOf('/')
      const folder = p.slice(0, slash)
      const parsed = parseImageName(p.slice(slash + 1))
      if (slash < 0 || folder !== layer.folder || !parsed) {
        throw new TilesyncError('BAD_DATASET', `${at}: ${layer.csv} "${p.slice(0, 120)}" is not a file of ${layer.folder}/ named <x>_<y>_<hash>.png`, {hint: 'fix the file; nothing was changed'})
      }
      if (parsed.x !== x || parsed.y !== y) throw new TilesyncError('BAD_DATASET', `${at}: ${p} is named for tile ${parsed.x},${parsed.y}, not ${key}`)
      if (hash !== parsed.hash) throw new TilesyncError('BAD_DATASET', `${at}: hash_${layer.csv} "${hash.slice(0, 20)}" does not match the hash in ${p}`)
      return p
    })
    out.push({line, x, y, paths})
  }
  return out
}
