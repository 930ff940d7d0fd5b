import {parse} from 'csv-parse/sync'

import {TilesyncError} from '../core/errors.js'
import {checkDatasetPath, CSV_PATH, LIMITS, MANIFEST_PATH, parseImageName, README_PATH, SIDECAR_DIR} from './layout.js'

/**
 * The layout the generation pipeline's own export script writes (not tilesync's): one folder
 * of generated images and a CSV naming them, plus two JSON files it copies from the run's
 * directory.
 *
 *   generations/<x>_<y>_<md5-8>.png   the `generation` image of tile x, y (Python's {:04d})
 *   generations.csv                   x,y,quadrant,hash_quadrant  (quadrant = generations/<file>)
 *   generation_config.json            the run's configuration (the app keeps it in metadata too)
 *   bounds.json                       the map's bounds (beside quadrants.db)
 *
 * Only tiles with a generated image are listed, so an import of it is additive: it sets the
 * listed tiles' `generation` and creates missing rows (with 0 for NOT NULL columns, as the
 * pipeline's import does), and never removes a tile or another image.
 */
export const PIPELINE_FOLDER = 'generations'
export const PIPELINE_CONFIG = 'generation_config.json'
export const PIPELINE_BOUNDS = 'bounds.json'
/** The column the pipeline's images belong to (the CSV calls it "quadrant"). */
export const PIPELINE_LAYER = 'generation'

export interface PipelineTile {
  /** 1-based line of generations.csv, for messages. */
  line: number
  x: bigint
  y: bigint
  path: string
  hash: string
}

/** A folder with generations/ and generations.csv and no tilesync sidecar is the pipeline's export. */
export function isPipelineLayout(files: ReadonlyMap<string, number>): boolean {
  if (files.has(MANIFEST_PATH) || !files.has(CSV_PATH)) return false
  let images = false
  for (const p of files.keys()) {
    if (p.startsWith(`${SIDECAR_DIR}/`)) return false
    if (p.startsWith(`${PIPELINE_FOLDER}/`)) images = true
  }
  return images
}

/** Refuses anything but the layout's files (and absurd sizes), before a byte of an image is read. */
export function checkPipelineFiles(files: ReadonlyMap<string, number>, label: string): void {
  for (const [p, size] of files) {
    const segs = p.split('/')
    const image = segs.length === 2 && segs[0] === PIPELINE_FOLDER && parseImageName(segs[1]) !== null
    const known = image || p === CSV_PATH || p === README_PATH || p === PIPELINE_CONFIG || p === PIPELINE_BOUNDS
    if (!known) {
      throw new TilesyncError('BAD_DATASET', `${label}: unknown file ${p}`, {hint: `the pipeline's export holds only ${PIPELINE_FOLDER}/<x>_<y>_<hash>.png, ${CSV_PATH}, ${PIPELINE_CONFIG}, ${PIPELINE_BOUNDS} and ${README_PATH}; nothing was changed`})
    }
    const max = image ? LIMITS.fileBytes : LIMITS.textBytes
    if (size > max) throw new TilesyncError('BAD_DATASET', `${label}: ${p} is ${size} bytes, more than the ${max} a dataset file may have`, {hint: 'refusing an absurd size; nothing was changed'})
  }
}

/**
 * Reads the pipeline's generations.csv strictly: columns x, y, quadrant, hash_quadrant (others,
 * such as an empty render column, are ignored); each line one tile with integer x, y and a
 * path generations/<x>_<y>_<hash>.png whose x, y and hash match the line. Every image file of
 * generations/ must be listed, each tile once.
 */
export function parsePipelineCsv(bytes: Buffer, images: ReadonlySet<string>, label: string): PipelineTile[] {
  const where = `${label}: ${CSV_PATH}`
  const bad = (why: string) => new TilesyncError('BAD_DATASET', `${where}: ${why}`, {hint: 'fix the file (or export again); nothing was changed'})
  let records: string[][]
  try {
    records = parse(bytes, {bom: true, skip_empty_lines: true, max_record_size: 1 << 20, to: LIMITS.csvRows + 2}) as string[][]
  } catch (err) {
    throw bad(`malformed CSV (${String((err as Error).message).replace(/\s+/g, ' ').slice(0, 160)})`)
  }
  if (records.length === 0) throw bad('no header line')
  if (records.length - 1 > LIMITS.csvRows) throw bad(`more than ${LIMITS.csvRows} tiles`)
  const header = records[0].map((h) => h.trim())
  const col = (name: string): number => {
    const i = header.indexOf(name)
    if (i < 0) throw bad(`the header has no "${name}" column (the pipeline writes x,y,quadrant,hash_quadrant)`)
    return i
  }
  const [xi, yi, pi, hi] = [col('x'), col('y'), col('quadrant'), col('hash_quadrant')]
  const out: PipelineTile[] = []
  const seen = new Set<string>()
  const listed = new Set<string>()
  for (let r = 1; r < records.length; r++) {
    const rec = records[r]
    const line = r + 1
    const at = `${where} line ${line}`
    const int = (text: string | undefined, name: string): bigint => {
      if (text === undefined || !/^-?\d{1,18}$/.test(text)) throw new TilesyncError('BAD_DATASET', `${at}: ${name} "${String(text).slice(0, 40)}" is not an integer`, {hint: 'fix the file; nothing was changed'})
      return BigInt(text)
    }
    const x = int(rec[xi], 'x')
    const y = int(rec[yi], 'y')
    const p = rec[pi] ?? ''
    const hash = rec[hi] ?? ''
    if (p === '') continue
    checkDatasetPath(p, at)
    const slash = p.indexOf('/')
    const parsed = slash < 0 ? null : parseImageName(p.slice(slash + 1))
    if (!parsed || p.slice(0, slash) !== PIPELINE_FOLDER) {
      throw new TilesyncError('BAD_DATASET', `${at}: quadrant "${p.slice(0, 120)}" is not a file of ${PIPELINE_FOLDER}/ named <x>_<y>_<hash>.png`, {hint: 'fix the file; nothing was changed'})
    }
    if (parsed.x !== x || parsed.y !== y) throw new TilesyncError('BAD_DATASET', `${at}: ${p} is named for tile ${parsed.x},${parsed.y}, not ${x},${y}`)
    if (hash !== parsed.hash) throw new TilesyncError('BAD_DATASET', `${at}: hash_quadrant "${hash.slice(0, 20)}" does not match the hash in ${p}`)
    if (!images.has(p)) throw new TilesyncError('BAD_DATASET', `${label}: ${p} is missing`, {hint: 'the dataset is incomplete; nothing was changed'})
    const key = `${x},${y}`
    if (seen.has(key)) throw new TilesyncError('BAD_DATASET', `${at}: tile ${key} appears twice`, {hint: 'keep one line per tile; nothing was changed'})
    seen.add(key)
    listed.add(p)
    out.push({line, x, y, path: p, hash})
  }
  for (const p of images) {
    if (!listed.has(p)) throw new TilesyncError('BAD_DATASET', `${label}: ${p} is not listed in ${CSV_PATH}`, {hint: 'export again so the CSV names every image; nothing was changed'})
  }
  return out
}

/** A JSON file of the layout, checked to be JSON (it is copied and stored as it is). */
export function checkJsonFile(bytes: Buffer, p: string, label: string): string {
  const text = bytes.toString('utf8')
  try {
    JSON.parse(text)
  } catch {
    throw new TilesyncError('BAD_DATASET', `${label}: ${p} is not valid JSON`, {hint: 'fix the file; nothing was changed'})
  }
  return text
}
