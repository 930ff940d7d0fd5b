import type {Statement} from 'better-sqlite3'

import {TilesyncError} from '../core/errors.js'
import type {RawChanges} from '../snapshot/change-set.js'
import {type Fallbacks, LayoutPair, type TypedCell} from '../snapshot/layout-compare.js'
import type {BlobRef, Cell, DatabaseHeader, Row, SchemaEntry, TableTree} from '../snapshot/model.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import type {ObjectReader} from '../store/object-store.js'
import {columnDefaults} from '../snapshot/column-defaults.js'
import {ignoredInSnapshot, IgnoreRules} from '../snapshot/ignore-rules.js'
import {CHANGES_TABLE, quoteIdent, readSchema, SEQUENCE_TABLE, tableColumns, virtualTableInfo} from './introspect.js'
import {exactKeyWhere, keyParams} from './key-match.js'
import type {Db} from './open-database.js'
import {parseCreateTable} from '../snapshot/schema-text.js'
import {planTable, type TablePlan} from './table-migration.js'
import {inTransaction} from './transactions.js'
import {touchesColumns} from '../snapshot/versioned-schema.js'

export interface ApplyPlan {
  /** Row changes per table, from the database's current state to the target. */
  changes: RawChanges
  /** Target schema; when given, tables, indexes, views and triggers are brought in line with it. */
  targetSchema?: SchemaEntry[]
  /** Target tables (needed when a table must be recreated). */
  targetTables?: Map<string, TableTree>
  /**
   * What the repository leaves out of versioning. Ignored tables are never dropped, altered or
   * written (one the database lacks is created, empty, from the target's schema, so the app
   * starts); ignored columns are never written and never cause a table to be rebuilt. Tables
   * and columns the target itself did not record (they were ignored when it was committed)
   * are left alone the same way.
   */
  ignore?: IgnoreRules
  /** Target header fields and AUTOINCREMENT counters (absent for snapshots that did not keep them). */
  targetHeader?: DatabaseHeader
  /**
   * Tables the database holds only part of (a partial clone's tile table): their row count
   * is checked against what was there plus inserts less deletes, not the target's count.
   */
  partialTables?: ReadonlySet<string>
}

export interface ApplyResult {
  rowsWritten: number
  rowsDeleted: number
  tablesRecreated: string[]
}

/** What the schema part of a checkout does, decided before anything is written (shared with --dry-run). */
export interface SchemaPlan {
  /** Ignored here: the repository's rules plus what the target did not record. */
  rules: IgnoreRules
  /** Tables that exist in the database and in the target, and how each is brought in line. */
  tables: Map<string, TablePlan>
  /** Versioned tables of the database the target lacks. */
  drop: string[]
  /** Tables of the target the database lacks (ignored ones included: they are created empty). */
  create: string[]
}

export function planSchema(current: SchemaEntry[], plan: Pick<ApplyPlan, 'targetSchema' | 'targetTables' | 'ignore'>): SchemaPlan {
  const rules = (plan.ignore ?? IgnoreRules.NONE).union(plan.targetSchema ? ignoredInSnapshot(plan.targetSchema, plan.targetTables ?? new Map()) : undefined)
  const out: SchemaPlan = {rules, tables: new Map(), drop: [], create: []}
  if (!plan.targetSchema) return out
  const target = plan.targetSchema
  const tableSql = (list: SchemaEntry[], name: string): string | undefined => list.find((e) => e.type === 'table' && e.name === name)?.sql
  for (const e of current.filter((e) => e.type === 'table')) {
    if (rules.tableIgnored(e.name)) continue
    if (tableSql(target, e.name) === undefined) out.drop.push(e.name)
  }
  for (const e of target.filter((e) => e.type === 'table')) {
    const sql = tableSql(current, e.name)
    if (sql === undefined) out.create.push(e.name)
    else if (!rules.tableIgnored(e.name)) {
      // A virtual table's definition is compared as a whole, as before.
      out.tables.set(e.name, /^\s*CREATE\s+VIRTUAL\s/i.test(e.sql) ? (sql === e.sql ? {action: 'keep'} : {action: 'recreate'}) : planTable(sql, e.sql, rules.columnsOf(e.name)))
    }
  }
  return out
}

/** Whether a schema entry belongs to what is left alone (an ignored table's index or trigger, an index on an ignored column). */
function leftAlone(e: SchemaEntry, rules: IgnoreRules): boolean {
  if (rules.tableIgnored(e.tblName)) return true
  const cols = rules.columnsOf(e.tblName)
  return e.type === 'index' && cols.size > 0 && touchesColumns(e.sql, cols)
}

const colRef = (table: TableTree, i: number): string => (table.keyKind === 'rowid' && i === 0 ? 'rowid' : quoteIdent(table.columns[i].name))
const nameRef = (name: string): string => (name === 'rowid' ? 'rowid' : quoteIdent(name))

async function bindValue(type: string, value: Cell, blobs: ObjectReader): Promise<unknown> {
  switch (type) {
    case 'n': return null
    case 'i': return BigInt(value as number | bigint)
    case 'r': return value as number
    case 't': return value as string
    case 'b': return blobs.get((value as BlobRef).id)
    default: throw new TypeError(`unknown cell type ${type}`)
  }
}

/** The database did not hold what the plan was computed from: stop before anything is kept. */
function unexpected(table: string, what: string): TilesyncError {
  return new TilesyncError('DB_CHANGED', `table "${table}" did not hold what tilesync expected (${what}), so nothing was written`, {
    hint: 'the database was changed in a way tilesync could not see; run `tilesync status --rescan`, commit what you want to keep, and run the command again',
  })
}

/** A table with a UNIQUE index besides its key, where rewriting rows in place can collide midway. */
function hasOtherUniqueIndex(db: Db, table: string): boolean {
  const indexes = db.prepare(`PRAGMA index_list(${quoteIdent(table)})`).all() as Array<{unique: number; origin: string}>
  return indexes.some((i) => i.unique === 1 && i.origin !== 'pk')
}

const countRows = (db: Db, table: string): number => Number((db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(table)}`).get() as {n: number}).n)

/** The stored columns a table has now (with the rowid for rowid-keyed tables), minus ignored ones. */
function writableColumns(db: Db, table: string, shape: TableTree | null, rules: IgnoreRules): Set<string> {
  const cols = new Set(tableColumns(db, table).filter((c) => c.hidden === 0).map((c) => c.name))
  for (const c of rules.columnsOf(table)) cols.delete(c)
  if (shape?.keyKind === 'rowid') cols.add('rowid')
  return cols
}

/** What a column holds when a layout lacks it: the target's default, else the database's. */
export function fallbacksFor(table: string, targetSchema: SchemaEntry[] | undefined, current: SchemaEntry[]): Fallbacks {
  const out = new Map<string, TypedCell>()
  for (const list of [targetSchema ?? [], current]) {
    const sql = list.find((e) => e.type === 'table' && e.name === table)?.sql
    if (sql) for (const [k, v] of columnDefaults(sql)) if (!out.has(k)) out.set(k, v)
  }
  return out
}

/**
 * The cells an update writes: columns the table has (not ignored) whose value differs between
 * the database's row (`before` layout) and the target's (`after` layout), compared by name.
 * Shared with --dry-run so both count the same rows.
 */
export function cellsToWrite(before: TableTree | null, after: TableTree, old: Row, neu: Row, writable: ReadonlySet<string>, fallbacks: Fallbacks): Array<{name: string; cell: TypedCell}> {
  const pair = new LayoutPair(before ?? {columns: []}, after, {fallbacks})
  return pair.changed(old, neu).filter((n) => writable.has(n)).map((name) => ({name, cell: pair.cellB(neu, name)}))
}

/**
 * Writes a snapshot's differences into the database in ONE transaction: all or nothing.
 * Only rows that differ are written, and of a changed row only the changed columns. Every
 * blob is read through the object store, which verifies its hash; a damaged object aborts
 * the transaction and leaves the database exactly as it was.
 *
 * Foreign keys must be off (every connection tilesync opens turns them off): the target is a
 * whole consistent state, and with them on, deleting or replacing a parent row would cascade
 * into (or null) child rows that the target keeps. Each statement must touch exactly one row
 * and each table must end with the row count the target has; anything else means the
 * database was not what the plan was computed from, and the transaction is rolled back.
 */
export async function applyToDatabase(db: Db, plan: ApplyPlan, reader: TreeReader, onRow?: () => void): Promise<ApplyResult> {
  if (db.pragma('foreign_keys', {simple: true}) !== 0) {
    // PRAGMA foreign_keys cannot change inside a transaction.
    if (db.inTransaction) throw new Error('applyToDatabase needs a connection with foreign keys off (open it with openDatabase)')
    db.pragma('foreign_keys = OFF')
  }
  // Joins the caller's transaction when there is one (checkout scans and writes in one).
  const result: ApplyResult = {rowsWritten: 0, rowsDeleted: 0, tablesRecreated: []}
  await inTransaction(db, 'write', async () => {
    const current = readSchema(db)
    const schemaPlan = planSchema(current, plan)
    const rules = schemaPlan.rules
    const recreate = new Set<string>()
    const restorers = new Map<string, () => void>()
    const created = new Set<string>()
    const deferred: SchemaEntry[] = []
    if (plan.targetSchema) {
      const target = plan.targetSchema
      const sqlOf = (list: SchemaEntry[], type: string, name: string): string | undefined => list.find((e) => e.type === type && e.name === name)?.sql
      // Triggers are dropped and recreated around the row writes so user triggers cannot fire
      // on a restore; changed indexes and views are replaced.
      // Unchanged indexes stay (rebuilding one means scanning the whole table).
      // What belongs to ignored tables and columns is never touched.
      for (const e of current.filter((e) => e.type !== 'table')) {
        if (leftAlone(e, rules)) continue
        if (e.type === 'trigger' || sqlOf(target, e.type, e.name) !== e.sql) db.exec(`DROP ${e.type.toUpperCase()} IF EXISTS ${quoteIdent(e.name)}`)
      }
      for (const name of schemaPlan.drop) db.exec(`DROP TABLE ${quoteIdent(name)}`)
      for (const name of schemaPlan.create) {
        db.exec(sqlOf(target, 'table', name)!)
        created.add(name)
        if (!rules.tableIgnored(name)) recreate.add(name)
      }
      deferred.push(...target.filter((e) => e.type !== 'table' && (created.has(e.tblName) || !leftAlone(e, rules))))
      for (const [name, tablePlan] of schemaPlan.tables) {
        const targetSql = sqlOf(target, 'table', name)!
        if (tablePlan.action === 'alter' && alterTable(db, name, tablePlan)) continue
        if (tablePlan.action === 'keep') continue
        restorers.set(name, rebuildTable(db, name, targetSql, current, rules, plan.targetTables?.get(name)))
        recreate.add(name)
      }
    } else {
      for (const e of current.filter((e) => e.type === 'trigger')) {
        if (leftAlone(e, rules)) continue
        db.exec(`DROP TRIGGER IF EXISTS ${quoteIdent(e.name)}`)
        deferred.push(e)
      }
    }

    const expectedCounts = new Map<string, number>()
    for (const name of recreate) {
      const table = plan.targetTables?.get(name)
      if (!table) continue
      expectedCounts.set(name, table.rowCount)
      const writable = writableColumns(db, name, table, rules)
      const cols = table.columns.map((c, i) => ({i, name: c.name})).filter((c) => writable.has(c.name))
      const insert = db.prepare(`INSERT INTO ${quoteIdent(name)} (${cols.map((c) => colRef(table, c.i)).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`)
      // Blobs of the next rows are read while the current one is inserted.
      const ahead: Array<Promise<unknown[]>> = []
      const flushOne = async (): Promise<void> => {
        insert.run(...(await ahead.shift()!))
        result.rowsWritten++
        onRow?.()
      }
      for await (const row of reader.rows(table)) {
        const values = Promise.all(cols.map((c) => bindValue(row.types[c.i], row.values[c.i], reader.objects)))
        values.catch(() => {})
        ahead.push(values)
        if (ahead.length > 8) await flushOne()
      }
      while (ahead.length > 0) await flushOne()
      restorers.get(name)?.()
      result.tablesRecreated.push(name)
    }

    for (const [name, {before, after, changes}] of plan.changes) {
      if (recreate.has(name) || changes.length === 0 || rules.tableIgnored(name)) continue
      if (plan.targetSchema && !plan.targetSchema.some((e) => e.type === 'table' && e.name === name)) continue
      // A table the target did not record rows of (it was ignored then) is left as it is.
      if (plan.targetSchema && !after) continue
      const shapeOld = (before ?? after)!
      const writable = writableColumns(db, name, after ?? before, rules)
      const fallbacks = fallbacksFor(name, plan.targetSchema, current)
      const startCount = plan.targetSchema && !plan.partialTables?.has(name) ? 0 : countRows(db, name)
      // Exact lookups: under COLLATE NOCASE `=` alone would also find 'A' for 'a'.
      const keyValues = async (t: TableTree, row: Row): Promise<unknown[]> => keyParams(t, await Promise.all(t.key.map((i) => bindValue(row.types[i], row.values[i], reader.objects))), t.key.map((i) => row.types[i]))
      const del = db.prepare(`DELETE FROM ${quoteIdent(name)} WHERE ${exactKeyWhere(shapeOld)}`)
      const once = (what: string, changed: number): void => {
        if (changed !== 1) throw unexpected(name, `${what} touched ${changed} rows`)
      }
      // With another UNIQUE index, rows changed in place can collide midway (two tiles that
      // swap places), and an ON CONFLICT REPLACE clause would then delete one silently: such
      // tables get every changed row deleted first and written whole after (with the values of
      // its ignored columns put back).
      const whole = after !== null && hasOtherUniqueIndex(db, name)
      const keep = whole ? await keepIgnoredCells(db, name, shapeOld, rules, changes.filter((c) => c.old && c.new).map((c) => c.old!), reader) : null
      // Deletes first, then updates, then inserts, so a key freed by one row can be taken by another.
      for (const c of changes) {
        if (c.old && (!c.new || whole)) {
          once('a delete', del.run(...(await keyValues(shapeOld, c.old))).changes)
          if (!c.new) {
            result.rowsDeleted++
            onRow?.()
          }
        }
      }
      for (const c of changes) {
        if (!c.old || !c.new || whole) continue
        const cells = cellsToWrite(before, after!, c.old, c.new, writable, fallbacks)
        if (cells.length === 0) continue
        const sql = `UPDATE ${quoteIdent(name)} SET ${cells.map((x) => `${nameRef(x.name)} = ?`).join(', ')} WHERE ${exactKeyWhere(shapeOld)}`
        const values = await Promise.all(cells.map((x) => bindValue(x.cell.type, x.cell.value, reader.objects)))
        once('an update', db.prepare(sql).run(...values, ...(await keyValues(shapeOld, c.old))).changes)
        result.rowsWritten++
        onRow?.()
      }
      let inserted = 0
      let deleted = 0
      for (const c of changes) if (c.old && !c.new) deleted++
      if (after) {
        const insert = insertStatement(db, after, writable)
        for (const c of changes) {
          if (!c.new || (c.old && !whole)) continue
          const row = c.new
          once('an insert', insert.statement.run(...(await Promise.all(insert.columns.map((i) => bindValue(row.types[i], row.values[i], reader.objects))))).changes)
          if (!c.old) inserted++
          result.rowsWritten++
          onRow?.()
        }
        keep?.()
      }
      const target = plan.targetTables?.get(name)
      expectedCounts.set(name, plan.targetSchema && target && !plan.partialTables?.has(name) ? target.rowCount : startCount + inserted - deleted)
    }
    if (plan.targetHeader) writeHeader(db, plan.targetHeader, new Set([...(plan.targetTables?.keys() ?? [])].filter((t) => !rules.tableIgnored(t))))
    const present = new Set((db.prepare(`SELECT type || ' ' || name AS k FROM sqlite_master`).all() as Array<{k: string}>).map((r) => r.k))
    for (const e of deferred) if (!present.has(`${e.type} ${e.name}`)) db.exec(e.sql)
    rebuildExternalIndexes(db, plan, recreate)
    // Cascades, REPLACE conflict clauses and user code can all remove rows behind the
    // statements' backs; the counts catch every one of them before the transaction commits.
    for (const [name, expected] of expectedCounts) {
      const actual = countRows(db, name)
      if (actual !== expected) throw unexpected(name, `${actual} rows where the target has ${expected}`)
    }
  })
  return result
}

/**
 * Before rows of a table are deleted to be written whole again: the values of its ignored
 * columns (which the target does not hold) are read by key, and the returned function puts
 * them back once the rows are in. Null when the table has no ignored column.
 */
async function keepIgnoredCells(db: Db, table: string, shape: TableTree, rules: IgnoreRules, rows: Row[], reader: TreeReader): Promise<(() => void) | null> {
  const present = new Set(tableColumns(db, table).filter((c) => c.hidden === 0).map((c) => c.name))
  const cols = [...rules.columnsOf(table)].filter((c) => present.has(c))
  if (cols.length === 0 || rows.length === 0) return null
  const where = exactKeyWhere(shape)
  const read = db.prepare(`SELECT ${cols.map(nameRef).join(', ')} FROM ${quoteIdent(table)} WHERE ${where}`).raw(true).safeIntegers(true)
  const write = db.prepare(`UPDATE ${quoteIdent(table)} SET ${cols.map((c) => `${nameRef(c)} = ?`).join(', ')} WHERE ${where}`)
  const saved: Array<{k: unknown[]; values: unknown[] | undefined}> = []
  for (const row of rows) {
    const k = keyParams(shape, await Promise.all(shape.key.map((i) => bindValue(row.types[i], row.values[i], reader.objects))), shape.key.map((i) => row.types[i]))
    saved.push({k, values: read.get(...k) as unknown[] | undefined})
  }
  return () => {
    for (const {k, values} of saved) if (values) write.run(...values, ...k)
  }
}

/**
 * user_version, application_id and the AUTOINCREMENT counters of the versioned tables exactly
 * as the target had them. Counters of other tables (an ignored work queue, tilesync's own) are
 * not the target's to set: the app keeps handing out ids from them.
 */
function writeHeader(db: Db, header: DatabaseHeader, versioned: ReadonlySet<string>): void {
  db.pragma(`user_version = ${Math.trunc(header.userVersion)}`)
  db.pragma(`application_id = ${Math.trunc(header.applicationId)}`)
  const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '${SEQUENCE_TABLE}'`).get() !== undefined
  if (!exists) return
  // Inserting rows moved the counters; the target's values replace them.
  const drop = db.prepare(`DELETE FROM ${SEQUENCE_TABLE} WHERE name = ?`)
  for (const name of versioned) if (name !== CHANGES_TABLE) drop.run(name)
  const insert = db.prepare(`INSERT INTO ${SEQUENCE_TABLE} (name, seq) VALUES (?, ?)`)
  for (const s of header.sequences) if (versioned.has(s.name)) insert.run(s.name, BigInt(s.seq))
}

/**
 * External-content full-text indexes (fts4/fts5 with content=TABLE) are not versioned: they
 * are derived from their content table, and tilesync writes that table with the user's
 * triggers (which usually keep the index in step) dropped. Each one whose content table or
 * own definition changed is rebuilt from the content, as SQLite documents.
 */
function rebuildExternalIndexes(db: Db, plan: ApplyPlan, recreated: Set<string>): void {
  const schema = plan.targetSchema ?? readSchema(db)
  for (const e of schema) {
    if (e.type !== 'table' || !/^\s*CREATE\s+VIRTUAL\s/i.test(e.sql)) continue
    const info = virtualTableInfo(e.sql)
    if ((info.module !== 'fts5' && info.module !== 'fts4') || !info.content) continue
    const changed = recreated.has(e.name) || recreated.has(info.content) || (plan.changes.get(info.content)?.changes.length ?? 0) > 0
    if (!changed) continue
    db.prepare(`INSERT INTO ${quoteIdent(e.name)}(${quoteIdent(e.name)}) VALUES ('rebuild')`).run()
  }
}

/**
 * ALTER TABLE DROP / ADD COLUMN inside a savepoint; false (and nothing changed) when SQLite
 * refuses one (a column in an index or a view, a NOT NULL column without default, ...), and
 * the caller rebuilds the table instead.
 */
function alterTable(db: Db, name: string, plan: Extract<TablePlan, {action: 'alter'}>): boolean {
  db.exec('SAVEPOINT tilesync_alter')
  try {
    for (const col of plan.drop) db.exec(`ALTER TABLE ${quoteIdent(name)} DROP COLUMN ${quoteIdent(col)}`)
    for (const col of plan.add) db.exec(`ALTER TABLE ${quoteIdent(name)} ADD COLUMN ${col.text}`)
    db.exec('RELEASE tilesync_alter')
    return true
  } catch {
    db.exec('ROLLBACK TO tilesync_alter')
    db.exec('RELEASE tilesync_alter')
    return false
  }
}

const KEEP_TABLE = 'temp."_tilesync_keep"'

/**
 * Drops a table and creates it from the target's statement. The values of its ignored
 * columns are kept aside (by row key), to be put back by the returned function once the
 * target's rows are in, with the app's indexes on them: a rebuild for a versioned reason
 * still leaves ignored data as it was.
 */
function rebuildTable(db: Db, name: string, targetSql: string, current: SchemaEntry[], rules: IgnoreRules, target: TableTree | undefined): () => void {
  const ignored = rules.columnsOf(name)
  const cols = tableColumns(db, name)
  const keys = target?.keyKind === 'rowid' ? ['rowid'] : cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name)
  const kept = keys.length > 0 ? cols.filter((c) => c.hidden === 0 && ignored.has(c.name)).map((c) => c.name) : []
  const keepIndexes = current.filter((e) => e.type === 'index' && e.tblName === name && leftAlone(e, rules))
  const currentSql = current.find((e) => e.type === 'table' && e.name === name)?.sql ?? ''
  const defs = new Map((parseCreateTable(currentSql)?.columns ?? []).map((c) => [c.name, c.text]))
  db.exec(`DROP TABLE IF EXISTS ${KEEP_TABLE}`)
  if (kept.length > 0) db.exec(`CREATE TABLE ${KEEP_TABLE} AS SELECT ${[...keys, ...kept].map(nameRef).join(', ')} FROM ${quoteIdent(name)}`)
  db.exec(`DROP TABLE ${quoteIdent(name)}`)
  db.exec(targetSql)
  const now = new Set(tableColumns(db, name).map((c) => c.name))
  for (const col of kept) if (!now.has(col) && defs.has(col)) db.exec(`ALTER TABLE ${quoteIdent(name)} ADD COLUMN ${defs.get(col)}`)
  return () => {
    if (kept.length > 0) {
      const match = keys.map((k) => `k.${nameRef(k)} IS ${quoteIdent(name)}.${nameRef(k)}`).join(' AND ')
      db.exec(`CREATE INDEX temp."_tilesync_keep_key" ON "_tilesync_keep" (${keys.map(nameRef).join(', ')})`)
      db.exec(`UPDATE ${quoteIdent(name)} SET (${kept.map(nameRef).join(', ')}) = (SELECT ${kept.map((c) => `k.${nameRef(c)}`).join(', ')} FROM ${KEEP_TABLE} k WHERE ${match}) WHERE EXISTS (SELECT 1 FROM ${KEEP_TABLE} k WHERE ${match})`)
      db.exec(`DROP TABLE ${KEEP_TABLE}`)
    }
    for (const ix of keepIndexes) db.exec(ix.sql)
  }
}

function insertStatement(db: Db, table: TableTree, writable: ReadonlySet<string>): {statement: Statement<unknown[]>; columns: number[]} {
  const columns = table.columns.map((c, i) => ({c, i})).filter(({c}) => writable.has(c.name)).map(({i}) => i)
  const refs = columns.map((i) => colRef(table, i))
  return {statement: db.prepare(`INSERT INTO ${quoteIdent(table.name)} (${refs.join(', ')}) VALUES (${refs.map(() => '?').join(', ')})`), columns}
}
