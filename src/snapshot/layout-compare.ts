import type {Cell, ColumnInfo, Row} from './model.js'
import {cellsEqual} from './rows.js'

/** A value with its SQLite type letter (n, i, r, t, b), as rows hold them. */
export interface TypedCell {
  type: string
  value: Cell
}

export const NULL_CELL: TypedCell = {type: 'n', value: null}

/** What a column that one layout lacks stands for: its default (see db/column-defaults.ts), else NULL. */
export type Fallbacks = ReadonlyMap<string, TypedCell>

export interface LayoutCompareOptions {
  /** Columns to leave out of the comparison (ignored columns). */
  skip?: ReadonlySet<string>
  fallbacks?: Fallbacks
}

const sameTyped = (a: TypedCell, b: TypedCell): boolean => a.type === b.type && cellsEqual(a.type, a.value, b.value)

/**
 * Compares rows of two column layouts of one table by column NAME, not position: the same
 * table in two databases may hold its columns in another order (the app adds them with
 * ALTER TABLE in whatever order it first needs them), or one layout may have a column the
 * other lacks. A column missing from one layout counts as holding its default there, so a
 * column added with NULL (or with its default) everywhere changes no row.
 */
export class LayoutPair {
  readonly names: string[]
  private readonly ia: Map<string, number>
  private readonly ib: Map<string, number>
  /** True when both layouts are the same columns in the same order and nothing is skipped. */
  readonly positional: boolean

  constructor(a: {columns: ColumnInfo[]}, b: {columns: ColumnInfo[]}, private readonly options: LayoutCompareOptions = {}) {
    const skip = options.skip ?? new Set<string>()
    this.ia = new Map(a.columns.map((c, i) => [c.name, i]))
    this.ib = new Map(b.columns.map((c, i) => [c.name, i]))
    this.names = [...new Set([...a.columns, ...b.columns].map((c) => c.name))].filter((n) => !skip.has(n))
    const skipped = [...skip].some((n) => this.ia.has(n) || this.ib.has(n))
    this.positional = !skipped && a.columns.length === b.columns.length && a.columns.every((c, i) => c.name === b.columns[i].name)
  }

  cellA(row: Row, name: string): TypedCell {
    return cellAt(row, this.ia.get(name), name, this.options.fallbacks)
  }

  cellB(row: Row, name: string): TypedCell {
    return cellAt(row, this.ib.get(name), name, this.options.fallbacks)
  }

  equal(ra: Row, rb: Row): boolean {
    for (const n of this.names) if (!sameTyped(this.cellA(ra, n), this.cellB(rb, n))) return false
    return true
  }

  /** Names of the columns whose value differs. */
  changed(ra: Row, rb: Row): string[] {
    return this.names.filter((n) => !sameTyped(this.cellA(ra, n), this.cellB(rb, n)))
  }
}

function cellAt(row: Row, index: number | undefined, name: string, fallbacks?: Fallbacks): TypedCell {
  if (index === undefined) return fallbacks?.get(name) ?? NULL_CELL
  return {type: row.types[index], value: row.values[index]}
}
