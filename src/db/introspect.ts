import type {SchemaEntry} from '../snapshot/model.js'
import type {Db} from './open-database.js'

/** Tables, triggers and indexes whose names start with this belong to tilesync itself. */
export const OWN_PREFIX = '_tilesync'

export interface ColumnXInfo {
  name: string
  type: string
  notnull: boolean
  pk: number
  /** 0 ordinary, 1 hidden (virtual tables), 2 generated virtual, 3 generated stored. */
  hidden: number
}

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`

export function isOwnName(name: string): boolean {
  return name.startsWith(OWN_PREFIX) || name.startsWith('sqlite_')
}

/** Ordinary user tables, sorted: not sqlite_*, not tilesync's own, not virtual tables. */
export function listUserTables(db: Db): string[] {
  const rows = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as Array<{name: string; sql: string | null}>
  return rows
    .filter((r) => !isOwnName(r.name) && !/^\s*CREATE\s+VIRTUAL\s/i.test(r.sql ?? ''))
    .map((r) => r.name)
}

export function tableColumns(db: Db, table: string): ColumnXInfo[] {
  const rows = db.prepare(`PRAGMA table_xinfo(${quoteIdent(table)})`).all() as Array<{name: string; type: string; notnull: number; pk: number; hidden: number}>
  return rows.map((r) => ({name: r.name, type: r.type ?? '', notnull: r.notnull === 1, pk: r.pk, hidden: r.hidden}))
}

/**
 * The schema a clone needs to recreate the database: every CREATE statement of user
 * tables, indexes, views and triggers, in a stable order (tables first, so a replay works).
 */
export function readSchema(db: Db): SchemaEntry[] {
  const rows = db.prepare(`SELECT type, name, tbl_name AS tblName, sql FROM sqlite_master WHERE sql IS NOT NULL`).all() as SchemaEntry[]
  const order: Record<string, number> = {table: 0, index: 1, view: 2, trigger: 3}
  return rows
    .filter((r) => !isOwnName(r.name) && !isOwnName(r.tblName))
    .sort((a, b) => (order[a.type] ?? 9) - (order[b.type] ?? 9) || a.name.localeCompare(b.name))
}
