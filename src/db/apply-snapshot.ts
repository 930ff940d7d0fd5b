import type {Statement} from 'better-sqlite3'

import {TilesyncError} from '../core/errors.js'
import type {RawChanges} from '../snapshot/change-set.js'
import type {BlobRef, Cell, DatabaseHeader, Row, SchemaEntry, TableTree} from '../snapshot/model.js'
import {cellsEqual} from '../snapshot/rows.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import type {ObjectReader} from '../store/object-store.js'
import {CHANGES_TABLE, quoteIdent, readSchema, SEQUENCE_TABLE, virtualTableInfo} from './introspect.js'
import {columnRef, exactKeyWhere, keyParams} from './key-match.js'
import type {Db} from './open-database.js'
import {inTransaction} from './transactions.js'

export interface ApplyPlan {
  /** Row changes per table, from the database's current state to the target. */
  changes: RawChanges
  /** Target schema; when given, tables, indexes, views and triggers are brought in line with it. */
  targetSchema?: SchemaEntry[]
  /** Target tables (needed when a table must be recreated). */
  targetTables?: Map<string, TableTree>
  /** Target header fields and AUTOINCREMENT counters (absent for snapshots that did not keep them). */
  targetHeader?: DatabaseHeader
}

export interface ApplyResult {
  rowsWritten: number
  rowsDeleted: number
  tablesRecreated: string[]
}

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
    const recreate = new Set<string>()
    const deferred: SchemaEntry[] = []
    if (plan.targetSchema) {
      const target = plan.targetSchema
      const sqlOf = (list: SchemaEntry[], type: string, name: string): string | undefined => list.find((e) => e.type === type && e.name === name)?.sql
      // Triggers are dropped and recreated around the row writes so user triggers cannot fire
      // on a restore; changed indexes and views are replaced.
      // Unchanged indexes stay (rebuilding one means scanning the whole table).
      for (const e of current.filter((e) => e.type !== 'table')) {
        if (e.type === 'trigger' || sqlOf(target, e.type, e.name) !== e.sql) db.exec(`DROP ${e.type.toUpperCase()} IF EXISTS ${quoteIdent(e.name)}`)
      }
      deferred.push(...target.filter((e) => e.type !== 'table'))
      for (const e of current.filter((e) => e.type === 'table')) {
        if (sqlOf(target, 'table', e.name) === undefined) db.exec(`DROP TABLE ${quoteIdent(e.name)}`)
      }
      for (const e of target.filter((e) => e.type === 'table')) {
        if (sqlOf(current, 'table', e.name) === e.sql) continue
        db.exec(`DROP TABLE IF EXISTS ${quoteIdent(e.name)}`)
        db.exec(e.sql)
        recreate.add(e.name)
      }
    } else {
      for (const e of current.filter((e) => e.type === 'trigger')) {
        db.exec(`DROP TRIGGER IF EXISTS ${quoteIdent(e.name)}`)
        deferred.push(e)
      }
    }

    const expectedCounts = new Map<string, number>()
    for (const name of recreate) {
      const table = plan.targetTables?.get(name)
      if (!table) continue
      const insert = insertStatement(db, table)
      // Blobs of the next rows are read while the current one is inserted.
      const ahead: Array<Promise<unknown[]>> = []
      const flushOne = async (): Promise<void> => {
        insert.run(...(await ahead.shift()!))
        result.rowsWritten++
        onRow?.()
      }
      for await (const row of reader.rows(table)) {
        const values = Promise.all(row.values.map((v, i) => bindValue(row.types[i], v, reader.objects)))
        values.catch(() => {})
        ahead.push(values)
        if (ahead.length > 8) await flushOne()
      }
      while (ahead.length > 0) await flushOne()
      result.tablesRecreated.push(name)
      expectedCounts.set(name, table.rowCount)
    }

    const once = (table: string, what: string, changes: number): void => {
      if (changes !== 1) throw unexpected(table, `${what} touched ${changes} rows`)
    }
    for (const [name, {before, after, changes}] of plan.changes) {
      if (recreate.has(name) || changes.length === 0) continue
      const shape = (after ?? before)!
      if (plan.targetSchema && !plan.targetSchema.some((e) => e.type === 'table' && e.name === name)) continue
      const startCount = plan.targetSchema ? 0 : countRows(db, name)
      const where = exactKeyWhere(shape)
      const del = db.prepare(`DELETE FROM ${quoteIdent(name)} WHERE ${where}`)
      const keyValues = async (row: Row): Promise<unknown[]> => keyParams(shape, await Promise.all(shape.key.map((i) => bindValue(row.types[i], row.values[i], reader.objects))), shape.key.map((i) => row.types[i]))
      // With another UNIQUE index, rows changed in place can collide midway (two tiles that
      // swap places), and an ON CONFLICT REPLACE clause would then delete one silently: such
      // tables get every changed row deleted first and written whole after.
      const whole = hasOtherUniqueIndex(db, name)
      // Deletes first, then updates, then inserts, so a key freed by one row can be taken by another.
      for (const c of changes) {
        if (c.old && (!c.new || whole)) {
          once(name, 'a delete', del.run(...(await keyValues(c.old))).changes)
          if (!c.new) {
            result.rowsDeleted++
            onRow?.()
          }
        }
      }
      for (const c of changes) {
        if (!c.old || !c.new || whole) continue
        const changed: number[] = []
        for (let i = 0; i < shape.columns.length; i++) {
          if (c.old.types[i] !== c.new.types[i] || !cellsEqual(c.new.types[i], c.old.values[i], c.new.values[i])) changed.push(i)
        }
        if (changed.length === 0) continue
        const sql = `UPDATE ${quoteIdent(name)} SET ${changed.map((i) => `${columnRef(shape, i)} = ?`).join(', ')} WHERE ${where}`
        const values = await Promise.all(changed.map((i) => bindValue(c.new!.types[i], c.new!.values[i], reader.objects)))
        once(name, 'an update', db.prepare(sql).run(...values, ...(await keyValues(c.old))).changes)
        result.rowsWritten++
        onRow?.()
      }
      const insert = insertStatement(db, shape)
      let inserted = 0
      let deleted = 0
      for (const c of changes) {
        if (c.old && !c.new) deleted++
        if (!c.new || (c.old && !whole)) continue
        const row = c.new
        once(name, 'an insert', insert.run(...(await Promise.all(row.values.map((v, i) => bindValue(row.types[i], v, reader.objects))))).changes)
        if (!c.old) inserted++
        result.rowsWritten++
        onRow?.()
      }
      const target = plan.targetTables?.get(name)
      expectedCounts.set(name, plan.targetSchema && target ? target.rowCount : startCount + inserted - deleted)
    }
    if (plan.targetHeader) writeHeader(db, plan.targetHeader)
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

/** user_version, application_id and AUTOINCREMENT counters exactly as the target had them. */
function writeHeader(db: Db, header: DatabaseHeader): void {
  db.pragma(`user_version = ${Math.trunc(header.userVersion)}`)
  db.pragma(`application_id = ${Math.trunc(header.applicationId)}`)
  const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '${SEQUENCE_TABLE}'`).get() !== undefined
  if (!exists) return
  // Inserting rows moved the counters; the target's values replace them (tilesync's own stays).
  db.prepare(`DELETE FROM ${SEQUENCE_TABLE} WHERE name IS NOT '${CHANGES_TABLE}'`).run()
  const insert = db.prepare(`INSERT INTO ${SEQUENCE_TABLE} (name, seq) VALUES (?, ?)`)
  for (const s of header.sequences) insert.run(s.name, BigInt(s.seq))
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

function insertStatement(db: Db, table: TableTree): Statement<unknown[]> {
  const cols = table.columns.map((_, i) => columnRef(table, i))
  return db.prepare(`INSERT INTO ${quoteIdent(table.name)} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`)
}
