import {TilesyncError} from '../core/errors.js'
import type {BlobRef, Cell, Row} from '../snapshot/model.js'
import {checkDatasetPath} from './layout.js'

/**
 * One row per line in tilesync/rows/<table>/<leaf>.jsonl:
 *
 *   {"t":"iirriiibbnt","v":[12,-3,40.7,-74.01,-2,6,1,{"b3":"…","size":1234,"path":"renders/0012_-003_1a2b3c4d.png"},…]}
 *
 * `t` has one letter per stored column, as in tilesync's own rows: n NULL, i INTEGER, r REAL,
 * t TEXT, b BLOB. INTEGERs beyond 2^53 are decimal strings; REALs JSON cannot hold (-0, ±Infinity,
 * NaN) are the strings "-0", "Infinity", "-Infinity", "NaN". A BLOB is its BLAKE3 id, its size and,
 * for image layers, the dataset file holding its bytes (other BLOBs live at tilesync/blobs/<b3>).
 */

export interface BlobCell extends BlobRef {
  path?: string
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

function encodeCell(type: string, v: Cell, path: string | undefined): unknown {
  switch (type) {
    case 'n': return null
    case 'i': return typeof v === 'bigint' ? v.toString() : v
    case 'r': {
      const n = v as number
      if (Object.is(n, -0)) return '-0'
      if (!Number.isFinite(n)) return String(n)
      return n
    }
    case 't': return v
    case 'b': {
      const ref = v as BlobRef
      return path === undefined ? {b3: ref.id, size: ref.size} : {b3: ref.id, size: ref.size, path}
    }
    default: throw new TypeError(`unknown cell type ${type}`)
  }
}

/** One JSONL line (no newline). `pathOf(i)` names the file of blob column i, if it has one. */
export function encodeRowLine(row: Row, pathOf: (column: number) => string | undefined): string {
  const values = row.values.map((v, i) => encodeCell(row.types[i], v, row.types[i] === 'b' ? pathOf(i) : undefined))
  return JSON.stringify({t: row.types, v: values})
}

export interface DecodedRow {
  row: Row
  /** Dataset path per blob column (index -> path), when the cell names one. */
  paths: Map<number, string>
}

/** Parses and checks one JSONL line against the table's column count; BAD_DATASET on anything off. */
export function decodeRowLine(line: string, columns: number, where: string): DecodedRow {
  const bad = (why: string) => new TilesyncError('BAD_DATASET', `${where}: ${why}`, {hint: 'the dataset was damaged or edited by hand; nothing was changed'})
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    throw bad('not valid JSON')
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad('a row must be a JSON object')
  const {t, v} = value as {t?: unknown; v?: unknown}
  if (typeof t !== 'string' || !/^[nirtb]*$/.test(t)) throw bad('"t" must be a string of the letters n, i, r, t, b')
  if (!Array.isArray(v)) throw bad('"v" must be an array')
  if (t.length !== columns || v.length !== columns) throw bad(`expected ${columns} cells, found ${Math.max(t.length, v.length)}`)
  const paths = new Map<number, string>()
  const values: Cell[] = v.map((raw, i) => {
    switch (t[i]) {
      case 'n':
        if (raw !== null) throw bad(`cell ${i} is typed NULL but holds a value`)
        return null
      case 'i': {
        if (typeof raw === 'number') {
          if (!Number.isSafeInteger(raw)) throw bad(`cell ${i} is not an integer`)
          return raw
        }
        if (typeof raw !== 'string' || !/^-?\d{1,19}$/.test(raw)) throw bad(`cell ${i} is not an integer`)
        const big = BigInt(raw)
        if (big < INT64_MIN || big > INT64_MAX) throw bad(`cell ${i} is outside SQLite's integer range`)
        return Number.isSafeInteger(Number(big)) ? Number(big) : big
      }
      case 'r': {
        if (typeof raw === 'number') return raw
        const special: Record<string, number> = {'-0': -0, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY, NaN: Number.NaN}
        if (typeof raw === 'string' && raw in special) return special[raw]
        throw bad(`cell ${i} is not a real number`)
      }
      case 't':
        if (typeof raw !== 'string') throw bad(`cell ${i} is not text`)
        return raw
      case 'b': {
        if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad(`cell ${i} is not a blob reference`)
        const {b3, size, path} = raw as {b3?: unknown; size?: unknown; path?: unknown}
        if (typeof b3 !== 'string' || !/^[0-9a-f]{64}$/.test(b3)) throw bad(`cell ${i} has no valid BLAKE3 id`)
        if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`cell ${i} has no valid size`)
        if (path !== undefined) paths.set(i, checkDatasetPath(path, where))
        return {id: b3, size}
      }
      default:
        throw bad(`unknown cell type ${t[i]}`)
    }
  })
  return {row: {types: t, values}, paths}
}
