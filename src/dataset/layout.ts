import {createHash} from 'node:crypto'

import {TilesyncError} from '../core/errors.js'

/**
 * The oxen dataset layout: where each thing lives and how files are named. Shared by export,
 * import and the oxen transport, so a path is computed in exactly one place.
 *
 *   README.md                          what the dataset is (rewritten on every export / push)
 *   generations.csv                    one line per tile: render,quadrant,x,y,hash_render,hash_quadrant
 *   renders/<x>_<y>_<hash>.png         the `render` column of each tile
 *   quadrants/<x>_<y>_<hash>.png       the `generation` column of each tile
 *   tilesync/manifest.json             format version, config, schema, commit, file hashes
 *   tilesync/rows/<table>/<leaf>.jsonl typed rows of every table, one file per tree leaf
 *   tilesync/blobs/<blake3>            BLOB cells that are not image layers
 *
 * Coordinates are written like Python's `f"{x:04d}"`: zero-padded to 4 characters with the
 * minus sign counting as one (12 -> 0012, -12 -> -012, -1234 -> -1234); `hash` is the first 8
 * hex digits of the file's MD5.
 */

export const CSV_PATH = 'generations.csv'
export const README_PATH = 'README.md'
export const SIDECAR_DIR = 'tilesync'
export const MANIFEST_PATH = 'tilesync/manifest.json'
export const ROWS_DIR = 'tilesync/rows'
export const BLOBS_DIR = 'tilesync/blobs'
export const DATASET_FORMAT = 'tilesync-dataset'
export const DATASET_VERSION = 1

const MiB = 1024 * 1024

/** What import and pull accept before calling a dataset absurd. */
export const LIMITS = {
  manifestBytes: 64 * MiB,
  /** generations.csv and each rows file. */
  textBytes: 1024 * MiB,
  /** One image or blob file. */
  fileBytes: 256 * MiB,
  csvRows: 20_000_000,
  pathLength: 512,
}

/** An image layer of the tile table: the column, its folder and its CSV column. */
export interface LayerFolder {
  column: string
  folder: string
  csv: string
}

/** The user's names for the standard shape; any other image column keeps its own name. */
const STANDARD_LAYERS: Record<string, {folder: string; csv: string}> = {
  render: {folder: 'renders', csv: 'render'},
  generation: {folder: 'quadrants', csv: 'quadrant'},
}

const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
const RESERVED = new Set([SIDECAR_DIR, CSV_PATH, README_PATH, '.oxen', 'x', 'y'])

export function layerFolder(column: string): LayerFolder {
  const std = STANDARD_LAYERS[column]
  const out = std ? {column, ...std} : {column, folder: column, csv: column}
  if (!SAFE_SEGMENT.test(out.folder) || RESERVED.has(out.folder) || out.csv.startsWith('hash_') || out.folder.length > 100) {
    throw new TilesyncError('BAD_DATASET', `the image column "${column}" cannot be a dataset folder name`, {
      hint: 'image columns must be named with letters, digits, "_", "." or "-" (and not x, y or tilesync)',
    })
  }
  return out
}

export function layerFolders(columns: string[]): LayerFolder[] {
  const out = columns.map(layerFolder)
  const seen = new Set<string>()
  for (const l of out) {
    if (seen.has(l.folder) || seen.has(l.csv)) throw new TilesyncError('BAD_DATASET', `two image columns map to the same dataset folder "${l.folder}"`)
    seen.add(l.folder)
    seen.add(l.csv)
  }
  return out
}

/** The generations.csv header for these layers: paths, x, y, then hashes. */
export function csvHeader(layers: LayerFolder[]): string[] {
  return [...layers.map((l) => l.csv), 'x', 'y', ...layers.map((l) => `hash_${l.csv}`)]
}

/** -12 -> "-012", 7 -> "0007", 12345 -> "12345" (Python's `{:04d}`). */
export function formatCoord(n: number | bigint): string {
  const v = BigInt(n)
  const neg = v < 0n
  const digits = (neg ? -v : v).toString()
  return neg ? `-${digits.padStart(3, '0')}` : digits.padStart(4, '0')
}

export function md5Prefix(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex').slice(0, 8)
}

export function imageName(x: number | bigint, y: number | bigint, hash: string): string {
  return `${formatCoord(x)}_${formatCoord(y)}_${hash}.png`
}

const IMAGE_NAME = /^(-?\d{3,}|\d{4,})_(-?\d{3,}|\d{4,})_([0-9a-f]{8})\.png$/

/** Parses a canonical image file name; null for anything else (including non-canonical padding). */
export function parseImageName(name: string): {x: bigint; y: bigint; hash: string} | null {
  const m = IMAGE_NAME.exec(name)
  if (!m) return null
  const x = BigInt(m[1])
  const y = BigInt(m[2])
  if (formatCoord(x) !== m[1] || formatCoord(y) !== m[2]) return null
  return {x, y, hash: m[3]}
}

/** tilesync/rows/<dir> for a table: its name when that is a safe file name, else hex of it. */
export function tableRowsDir(table: string): string {
  const seg = SAFE_SEGMENT.test(table) && table.length <= 100 ? table : `t-${Buffer.from(table, 'utf8').toString('hex').slice(0, 200)}`
  return `${ROWS_DIR}/${seg}`
}

/** A tree leaf label ("3,-2" spatial, "#a7" hashed) as a file name. */
export function leafFileName(label: string): string {
  if (label.startsWith('#')) return `h${label.slice(1)}.jsonl`
  return `${label.replace(',', '_')}.jsonl`
}

export function blobPath(id: string): string {
  return `${BLOBS_DIR}/${id}`
}

/**
 * Checks a path named by a dataset (in generations.csv or a rows file) before anything opens
 * it: relative, `/`-separated, no `.`/`..` segments, no control characters, not too long.
 * Throws HOSTILE_PATH naming the path and where it came from.
 */
export function checkDatasetPath(p: unknown, where: string): string {
  if (typeof p !== 'string') throw new TilesyncError('BAD_DATASET', `${where}: a path must be a string`)
  const shown = JSON.stringify(p.slice(0, 120))
  const refuse = (why: string) => new TilesyncError('HOSTILE_PATH', `${where}: refusing path ${shown}: ${why}`, {hint: 'the dataset was damaged or tampered with; nothing was changed'})
  if (p === '') throw refuse('empty path')
  if (p.length > LIMITS.pathLength) throw refuse('path too long')
  if (p.startsWith('/') || /^[a-zA-Z]:/.test(p) || p.startsWith('~')) throw refuse('absolute path')
  if (p.includes('\\')) throw refuse('backslash in path')
  if (/[\u0000-\u001f\u007f]/.test(p)) throw refuse('control character in path')
  if (p.split('/').some((s) => s === '' || s === '.' || s === '..')) throw refuse('"..", "." or empty segment (path traversal)')
  return p
}

/** Where a dataset path belongs; null for paths outside the layout. */
export type PathKind = 'csv' | 'readme' | 'manifest' | 'rows' | 'blob' | 'image'

export function classifyPath(p: string, folders: Set<string>): PathKind | null {
  if (p === CSV_PATH) return 'csv'
  if (p === README_PATH) return 'readme'
  if (p === MANIFEST_PATH) return 'manifest'
  const segs = p.split('/')
  if (segs.length === 4 && segs[0] === 'tilesync' && segs[1] === 'rows' && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(segs[2]) && /^(h[0-9a-f]{2}|-?\d+_-?\d+)\.jsonl$/.test(segs[3])) return 'rows'
  if (segs.length === 3 && segs[0] === 'tilesync' && segs[1] === 'blobs' && /^[0-9a-f]{64}$/.test(segs[2])) return 'blob'
  if (segs.length === 2 && folders.has(segs[0]) && parseImageName(segs[1])) return 'image'
  return null
}

export const MiBytes = MiB
