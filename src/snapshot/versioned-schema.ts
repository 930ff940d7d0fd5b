import type {SchemaEntry} from './model.js'
import type {IgnoreRules} from './ignore-rules.js'
import {comparableTableSql, indexColumns, normalizeSql, parseCreateTable} from './schema-text.js'

/**
 * The part of a schema that is versioned, in a form fit for comparing: ignored tables (and
 * their indexes and triggers) left out, ignored columns cut out of their table's CREATE
 * statement, indexes on ignored columns left out, whitespace normalized. Two databases whose
 * versioned schemas are equal differ at most in what tilesync was told to leave alone, so
 * neither status nor a checkout has anything to do about their schemas.
 */
export function versionedSchema(schema: readonly SchemaEntry[], rules: IgnoreRules): SchemaEntry[] {
  const out: SchemaEntry[] = []
  for (const e of schema) {
    if (rules.tableIgnored(e.tblName)) continue
    const cols = rules.columnsOf(e.tblName)
    if (e.type === 'table') {
      out.push({...e, sql: comparableTableSql(e.sql, cols)})
      continue
    }
    if (e.type === 'index' && cols.size > 0 && touchesColumns(e.sql, cols)) continue
    out.push({...e, sql: normalizeSql(e.sql)})
  }
  return out.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** Whether an index mentions one of these columns (an index on an ignored column is the app's, not versioned). */
export function touchesColumns(indexSql: string, columns: ReadonlySet<string>): boolean {
  const ix = indexColumns(indexSql)
  if (!ix) return false
  for (const c of columns) if (ix.names.has(c)) return true
  return false
}

export function sameVersionedSchema(a: readonly SchemaEntry[], b: readonly SchemaEntry[], rules: IgnoreRules): boolean {
  return JSON.stringify(versionedSchema(a, rules)) === JSON.stringify(versionedSchema(b, rules))
}

/** One line of what a schema change did, as `tilesync status` and `diff` print it. */
export interface SchemaChange {
  kind: 'table' | 'column' | 'index' | 'view' | 'trigger'
  name: string
  /** For columns: their table. */
  table?: string
  change: 'added' | 'removed' | 'changed'
}

/**
 * Schema changes from `before` to `after`, column by column where a table's definition can be
 * taken apart (a column added by the app at run time is "column dark_mode added"), else per
 * table, index, view and trigger.
 */
export function describeSchemaChanges(before: readonly SchemaEntry[], after: readonly SchemaEntry[], rules: IgnoreRules): SchemaChange[] {
  const a = new Map(versionedSchema(before, rules).map((e) => [`${e.type}\u0000${e.name}`, e]))
  const b = new Map(versionedSchema(after, rules).map((e) => [`${e.type}\u0000${e.name}`, e]))
  const out: SchemaChange[] = []
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort()
  const raw = (list: readonly SchemaEntry[], name: string): string | undefined => list.find((e) => e.type === 'table' && e.name === name)?.sql
  for (const k of keys) {
    const x = a.get(k)
    const y = b.get(k)
    const e = (x ?? y)!
    const kind = e.type as SchemaChange['kind']
    if (!x || !y) {
      out.push({kind, name: e.name, change: x ? 'removed' : 'added'})
      continue
    }
    if (x.sql === y.sql) continue
    if (e.type !== 'table') {
      out.push({kind, name: e.name, change: 'changed'})
      continue
    }
    const cols = rules.columnsOf(e.name)
    const da = parseCreateTable(raw(before, e.name) ?? '')
    const db = parseCreateTable(raw(after, e.name) ?? '')
    if (!da || !db) {
      out.push({kind, name: e.name, change: 'changed'})
      continue
    }
    const ca = new Map(da.columns.filter((c) => !cols.has(c.name)).map((c) => [c.name, normalizeSql(c.text)]))
    const cb = new Map(db.columns.filter((c) => !cols.has(c.name)).map((c) => [c.name, normalizeSql(c.text)]))
    const columnChanges: SchemaChange[] = []
    for (const [name, text] of cb) {
      if (!ca.has(name)) columnChanges.push({kind: 'column', name, table: e.name, change: 'added'})
      else if (ca.get(name) !== text) columnChanges.push({kind: 'column', name, table: e.name, change: 'changed'})
    }
    for (const name of ca.keys()) if (!cb.has(name)) columnChanges.push({kind: 'column', name, table: e.name, change: 'removed'})
    const sameRest = normalizeSql(da.head) === normalizeSql(db.head) && normalizeSql(da.tail) === normalizeSql(db.tail) &&
      JSON.stringify(da.constraints.map(normalizeSql)) === JSON.stringify(db.constraints.map(normalizeSql))
    const order = (m: Map<string, string>, other: Map<string, string>): string => [...m.keys()].filter((n) => other.has(n)).join('\u0000')
    out.push(...columnChanges)
    // Anything the column list does not explain (constraints, WITHOUT ROWID, column order).
    if (!sameRest || order(ca, cb) !== order(cb, ca)) {
      out.push({kind: 'table', name: e.name, change: 'changed'})
    }
  }
  return out
}
