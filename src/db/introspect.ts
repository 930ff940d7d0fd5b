import type {DatabaseHeader, SchemaEntry} from '../snapshot/model.js'
import type {Db} from './open-database.js'

/** Tables and triggers tilesync adds to a database for change tracking start with this. */
export const OWN_PREFIX = '_tilesync'
/** tilesync's own tables, by exact (case-sensitive) name: nothing else is ever treated as its own. */
export const CHANGES_TABLE = `${OWN_PREFIX}_changes`
export const STATE_TABLE = `${OWN_PREFIX}_state`
/** Their CREATE statements, exactly as tilesync makes them. */
export const OWN_TABLE_SQL: Readonly<Record<string, string>> = {
  [CHANGES_TABLE]: `CREATE TABLE ${CHANGES_TABLE} (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, k0, k1, k2, k3)`,
  [STATE_TABLE]: `CREATE TABLE ${STATE_TABLE} (key TEXT PRIMARY KEY, value TEXT)`,
}
export const TRIGGER_OPS = ['ins', 'upd', 'del'] as const
export type TriggerOp = typeof TRIGGER_OPS[number]
/** SQLite's table of AUTOINCREMENT counters, versioned as rows keyed by table name. */
export const SEQUENCE_TABLE = 'sqlite_sequence'

export const ownTriggerName = (table: string, op: TriggerOp): string => `${OWN_PREFIX}_${table}_${op}`

export interface ColumnXInfo {
  name: string
  type: string
  notnull: boolean
  pk: number
  /** 0 ordinary, 1 hidden (virtual tables), 2 generated virtual, 3 generated stored. */
  hidden: number
}

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`

/** SQLite reserves every name starting with "sqlite_", in any case, for itself. */
export const isSqliteInternal = (name: string): boolean => name.toLowerCase().startsWith('sqlite_')

export function isOwnTable(name: string): boolean {
  return name === CHANGES_TABLE || name === STATE_TABLE
}

/**
 * A trigger is tilesync's when it has exactly the name tilesync gives the trigger of its table
 * and writes the change record; a user's trigger that merely looks alike is the user's.
 */
export function isOwnTrigger(name: string, tblName: string, sql: string | null): boolean {
  return TRIGGER_OPS.some((op) => name === ownTriggerName(tblName, op)) && (isKeyTrigger(sql) || (sql ?? '').includes(MARKER_BODY))
}

/** A trigger that records keys in the change record (the others only count writes; see change-tracking.ts). */
export const isKeyTrigger = (sql: string | null): boolean => (sql ?? '').includes(`INSERT INTO ${CHANGES_TABLE} `)

/** The body of the triggers that count writes to tables the record does not hold. */
export const MARKER_BODY = `UPDATE ${STATE_TABLE} SET value = CAST(value AS INTEGER) + 1 WHERE key = 'other_writes';`

/** An object tilesync must neither version nor touch as the user's: its own, or SQLite's. */
export function isOwnName(name: string): boolean {
  return isOwnTable(name) || isSqliteInternal(name)
}

export interface TableListing {
  name: string
  /** What PRAGMA table_list says: an ordinary table, a virtual table, or a virtual table's shadow table. */
  type: 'table' | 'virtual' | 'shadow'
  sql: string
  strict: boolean
}

/** Every table of the main schema with its kind (shadow tables are recognised by SQLite itself). */
export function listTables(db: Db): TableListing[] {
  let listed: Array<{name: string; type: string; strict: number}>
  try {
    listed = db.prepare(`SELECT name, type, strict FROM pragma_table_list WHERE schema = 'main'`).all() as typeof listed
  } catch {
    // A virtual table whose module this SQLite lacks makes the pragma fail; sqlite_master still
    // names every table (and the refusal of that table says what is wrong).
    listed = []
  }
  const kinds = new Map(listed.map((r) => [r.name, r]))
  const rows = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as Array<{name: string; sql: string | null}>
  return rows.map((r) => {
    const k = kinds.get(r.name)
    const virtual = /^\s*CREATE\s+VIRTUAL\s/i.test(r.sql ?? '')
    const type = virtual ? 'virtual' : k?.type === 'shadow' ? 'shadow' : 'table'
    return {name: r.name, type, sql: r.sql ?? '', strict: k?.strict === 1}
  })
}

export interface VirtualTableInfo {
  module: string
  /** fts5/fts4 `content=` option: null when the table holds its own content, '' when contentless. */
  content: string | null
}

/** The module and content option of a CREATE VIRTUAL TABLE statement. */
export function virtualTableInfo(sql: string): VirtualTableInfo {
  const m = /\bUSING\s+([A-Za-z0-9_]+)\s*(?:\(([\s\S]*)\))?\s*$/i.exec(sql)
  const module = (m?.[1] ?? '').toLowerCase()
  const args = m?.[2] ?? ''
  const c = /(?:^|,)\s*content\s*=\s*(?:'((?:[^']|'')*)'|"((?:[^"]|"")*)"|([A-Za-z0-9_]*))\s*(?:,|$)/i.exec(args)
  const content = c ? (c[1]?.replaceAll("''", "'") ?? c[2]?.replaceAll('""', '"') ?? c[3] ?? '') : null
  return {module, content}
}

const CONTENT_MODULES = new Set(['fts3', 'fts4', 'fts5', 'rtree', 'rtree_i32'])
/** Read-only views of a full-text table's index: they hold nothing of their own. */
export const VIEW_MODULES = new Set(['fts5vocab', 'fts4aux'])

/**
 * Whether tilesync keeps a virtual table's rows: full-text and R*Tree tables that hold their own
 * content are read and written through the table itself (SQLite rebuilds their index). An
 * external-content or contentless index is not (its rows live elsewhere, or nowhere), and a
 * module tilesync does not know is not either.
 */
export function versionsVirtualRows(info: VirtualTableInfo): boolean {
  return CONTENT_MODULES.has(info.module) && info.content === null
}

/** Tables whose rows are versioned, sorted: ordinary user tables and content-holding virtual tables. */
export function listUserTables(db: Db): string[] {
  return listTables(db)
    .filter((t) => !isOwnName(t.name) && (t.type === 'table' || (t.type === 'virtual' && versionsVirtualRows(virtualTableInfo(t.sql)))))
    .map((t) => t.name)
}

export function tableColumns(db: Db, table: string): ColumnXInfo[] {
  const rows = db.prepare(`PRAGMA table_xinfo(${quoteIdent(table)})`).all() as Array<{name: string; type: string; notnull: number; pk: number; hidden: number}>
  return rows.map((r) => ({name: r.name, type: r.type ?? '', notnull: r.notnull === 1, pk: r.pk, hidden: r.hidden}))
}

/**
 * The schema a clone needs to recreate the database: every CREATE statement of user
 * tables, indexes, views and triggers, in a stable order (tables first, so a replay works).
 * Shadow tables are left out: the CREATE VIRTUAL TABLE of their table makes them.
 */
export function readSchema(db: Db): SchemaEntry[] {
  const rows = db.prepare(`SELECT type, name, tbl_name AS tblName, sql FROM sqlite_master WHERE sql IS NOT NULL`).all() as SchemaEntry[]
  const shadows = new Set(listTables(db).filter((t) => t.type === 'shadow').map((t) => t.name))
  const order: Record<string, number> = {table: 0, index: 1, view: 2, trigger: 3}
  return rows
    .filter((r) => !isOwnName(r.name) && !isOwnName(r.tblName) && !shadows.has(r.tblName) && !(r.type === 'trigger' && isOwnTrigger(r.name, r.tblName, r.sql)))
    .sort((a, b) => (order[a.type] ?? 9) - (order[b.type] ?? 9) || a.name.localeCompare(b.name))
}

/**
 * The header fields and AUTOINCREMENT counters a snapshot keeps (tilesync's own counter, of
 * the change record, is not the user's and is left out).
 */
export function readHeader(db: Db): DatabaseHeader {
  const userVersion = Number(db.pragma('user_version', {simple: true}))
  const applicationId = Number(db.pragma('application_id', {simple: true}))
  const hasSequences = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '${SEQUENCE_TABLE}'`).get() !== undefined
  const sequences = hasSequences
    ? (db.prepare(`SELECT name, seq FROM ${SEQUENCE_TABLE} WHERE name IS NOT '${CHANGES_TABLE}' AND typeof(name) = 'text' AND typeof(seq) = 'integer'`).safeIntegers(true).all() as Array<{name: string; seq: bigint}>)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0))
      .map((r) => ({name: r.name, seq: r.seq >= BigInt(Number.MIN_SAFE_INTEGER) && r.seq <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(r.seq) : r.seq}))
    : []
  return {userVersion, applicationId, sequences}
}
