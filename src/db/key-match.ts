import {quoteIdent} from './introspect.js'

/** The parts of a table description needed to find one row by its key. */
export interface KeyShape {
  columns: Array<{name: string}>
  keyKind: 'pk' | 'rowid'
  key: number[]
}

const TYPE_NAMES: Record<string, string> = {i: 'integer', r: 'real', t: 'text', b: 'blob', n: 'null'}

export const columnRef = (shape: KeyShape, i: number): string => (shape.keyKind === 'rowid' && i === 0 ? 'rowid' : quoteIdent(shape.columns[i].name))

/**
 * A WHERE clause that matches exactly the row whose key cells are these values, of these
 * types. SQLite's own `=` would also match 'A' for 'a' under COLLATE NOCASE, 'a ' for 'a'
 * under RTRIM, and the REAL 1.0 for the INTEGER 1 in a column without affinity: tilesync keeps
 * those as different keys (they are different values), so its lookups must not merge them.
 * The plain `=` comes first so SQLite can still use the key's index.
 * Parameters: see `keyParams`.
 */
export function exactKeyWhere(shape: KeyShape): string {
  return shape.key.map((i) => {
    const c = columnRef(shape, i)
    if (shape.keyKind === 'rowid') return `${c} = ?`
    return `${c} = ? AND ${c} = ? COLLATE BINARY AND typeof(${c}) = ?`
  }).join(' AND ')
}

/** The parameters of `exactKeyWhere` for key values given with their type letters (n/i/r/t/b). */
export function keyParams(shape: KeyShape, values: unknown[], types: string[]): unknown[] {
  if (shape.keyKind === 'rowid') return values
  const out: unknown[] = []
  values.forEach((v, i) => out.push(v, v, TYPE_NAMES[types[i]] ?? 'null'))
  return out
}

/** The type letter of a value as better-sqlite3 returns it (integers as bigints). */
export function typeLetter(v: unknown): string {
  if (v === null || v === undefined) return 'n'
  if (typeof v === 'bigint') return 'i'
  if (typeof v === 'number') return 'r'
  if (typeof v === 'string') return 't'
  return 'b'
}
