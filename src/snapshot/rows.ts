import type {BlobRef, Cell, Partition, Row, TableTree} from './model.js'

/** The parts of a table description that row helpers need (a TableSpec or a stored TableTree). */
export type RowShape = Pick<TableTree, 'columns' | 'key' | 'partition' | 'layers'>

const SEP = '\u001f'

/**
 * TEXT holding the separator would make two different composite keys read alike
 * (["a\u001ftb", "x"] and ["a", "b\u001ftx"]): such characters are escaped. Keys without
 * them read exactly as before, so existing trees keep their leaves.
 */
const escapeText = (v: string): string => (/[\u001e\u001f]/.test(v) ? v.replace(/[\u001e\u001f]/g, (c) => (c === '\u001e' ? '\u001e0' : '\u001e1')) : v)

function cellKeyPart(type: string, v: Cell): string {
  switch (type) {
    case 'n': return 'n'
    case 'b': return `b${(v as BlobRef).id}`
    case 't': return `t${escapeText(v as string)}`
    default: return `${type}${String(v)}`
  }
}

/** Canonical string for a row's key: map lookups and sorting inside a leaf. */
export function rowKey(row: Row, key: number[]): string {
  if (key.length === 1) return cellKeyPart(row.types[key[0]], row.values[key[0]])
  return key.map((i) => cellKeyPart(row.types[i], row.values[i])).join(SEP)
}

/** The key as people read it: "12,-3" for a tile, the key values joined with "," otherwise. */
export function displayKey(row: Row, key: number[]): string {
  return key.map((i) => (row.types[i] === 'b' ? (row.values[i] as BlobRef).id.slice(0, 8) : String(row.values[i]))).join(',')
}

/** Tile coordinates when the table is spatially partitioned and the cells are integers. */
export function tileXY(row: Row, partition: Partition): [number, number] | null {
  if (partition.kind !== 'spatial') return null
  const {x, y} = partition
  if (row.types[x] !== 'i' || row.types[y] !== 'i') return null
  return [Number(row.values[x]), Number(row.values[y])]
}

/** Leaves cover LEAF_SPAN x LEAF_SPAN tiles; level-1 nodes cover MID_SPAN leaves per side. */
export const LEAF_SPAN = 16
export const MID_SPAN = 16

function fnv1a(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/**
 * Which leaf a row belongs to. Spatial tables group 16x16 tiles per leaf, so a change to a
 * few tiles rewrites a few small leaves and every other region is shared with the parent
 * commit; other tables spread rows over 256 leaves by a hash of the key.
 */
export function leafLabel(row: Row, shape: RowShape, keyString: string): string {
  const xy = tileXY(row, shape.partition)
  if (xy) return `${Math.floor(xy[0] / LEAF_SPAN)},${Math.floor(xy[1] / LEAF_SPAN)}`
  return `#${(fnv1a(keyString) & 0xff).toString(16).padStart(2, '0')}`
}

export function midLabel(leaf: string): string {
  if (leaf.startsWith('#')) return '#'
  const [lx, ly] = leaf.split(',').map(Number)
  return `${Math.floor(lx / MID_SPAN)},${Math.floor(ly / MID_SPAN)}`
}

/** Tile-coordinate bounds [x0, y0, x1, y1] (inclusive) a spatial label covers; null for hash labels. */
export function labelBounds(label: string, level: 1 | 2): [number, number, number, number] | null {
  if (label.startsWith('#')) return null
  const [a, b] = label.split(',').map(Number)
  const span = level === 1 ? LEAF_SPAN : LEAF_SPAN * MID_SPAN
  return [a * span, b * span, a * span + span - 1, b * span + span - 1]
}

export function rowsEqual(a: Row, b: Row): boolean {
  if (a.types !== b.types) return false
  for (let i = 0; i < a.values.length; i++) if (!cellsEqual(a.types[i], a.values[i], b.values[i])) return false
  return true
}

export function cellsEqual(type: string, a: Cell, b: Cell): boolean {
  if (type === 'b') return (a as BlobRef).id === (b as BlobRef).id
  if (type === 'i') return BigInt(a as number | bigint) === BigInt(b as number | bigint)
  if (type === 'r') return Object.is(a, b) || a === b
  return a === b
}

/** Compares one column of two rows that may have different column layouts. */
export function cellOf(row: Row, index: number): {type: string; value: Cell} {
  return index < 0 ? {type: 'n', value: null} : {type: row.types[index], value: row.values[index]}
}

export const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
