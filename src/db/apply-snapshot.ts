import type {Statement} from 'better-sqlite3'
import type {RawChanges} from '../snapshot/change-set.js'
import type {BlobRef, Cell, Row, SchemaEntry, TableTree} from '../snapshot/model.js'
import {cellsEqual} from '../snapshot/rows.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import type {ObjectReader} from '../store/object-store.js'
import {quoteIdent, readSchema} from './introspect.js'
import type {Db} from './open-database.js'
import {inTransaction} from './transactions.js'

export interface ApplyPlan {
  /** Row changes per table, from the database's current state to the target. */
  changes: RawChanges
  /** Target schema; when given, tables, indexes, views and triggers are brought in line with it. */
  targetSchema?: SchemaEntry[]
  /** Target tables (needed when a table must be recreated). */
  targetTables?: Map<string, TableTree>
}

export interface ApplyResult {
  rowsWritten: number
  rowsDeleted: number
  tablesRecreated: string[]
}

const colRef = (table: TableTree, i: number): string => (table.keyKind === 'rowid' && i === 0 ? 'rowid' : quoteIdent(table.columns[i].name))

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

/**
 * Writes a snapshot's differences into the database in ONE transaction: all or nothing.
 * Only rows that differ are written, and of a changed row only the changed columns. Every
 * blob is read through the object store, which verifies its hash; a damaged object aborts
 * the transaction and leaves the database exactly as it was.
 */
export async function applyToDatabase(db: Db, plan: ApplyPlan, reader: TreeReader, onRow?: () => void): Promise<ApplyResult> {
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
    }

    for (const [name, {before, after, changes}] of plan.changes) {
      if (recreate.has(name) || changes.length === 0) continue
      const shape = (after ?? before)!
      if (plan.targetSchema && !plan.targetSchema.some((e) => e.type === 'table' && e.name === name)) continue
      const where = shape.key.map((i) => `${colRef(shape, i)} IS ?`).join(' AND ')
      const del = db.prepare(`DELETE FROM ${quoteIdent(name)} WHERE ${where}`)
      const keyValues = (row: Row): Promise<unknown[]> => Promise.all(shape.key.map((i) => bindValue(row.types[i], row.values[i], reader.objects)))
      // Deletes first, then updates, then inserts, so a key freed by one row can be taken by another.
      for (const c of changes) {
        if (c.old && !c.new) {
          del.run(...(await keyValues(c.old)))
          result.rowsDeleted++
          onRow?.()
        }
      }
      for (const c of changes) {
        if (!c.old || !c.new) continue
        const changed: number[] = []
        for (let i = 0; i < shape.columns.length; i++) {
          if (c.old.types[i] !== c.new.types[i] || !cellsEqual(c.new.types[i], c.old.values[i], c.new.values[i])) changed.push(i)
        }
        if (changed.length === 0) continue
        const sql = `UPDATE ${quoteIdent(name)} SET ${changed.map((i) => `${colRef(shape, i)} = ?`).join(', ')} WHERE ${where}`
        const values = await Promise.all(changed.map((i) => bindValue(c.new!.types[i], c.new!.values[i], reader.objects)))
        db.prepare(sql).run(...values, ...(await keyValues(c.old)))
        result.rowsWritten++
        onRow?.()
      }
      const insert = insertStatement(db, shape)
      for (const c of changes) {
        if (c.old || !c.new) continue
        const row = c.new
        insert.run(...(await Promise.all(row.values.map((v, i) => bindValue(row.types[i], v, reader.objects)))))
        result.rowsWritten++
        onRow?.()
      }
    }
    const present = new Set((db.prepare(`SELECT type || ' ' || name AS k FROM sqlite_master`).all() as Array<{k: string}>).map((r) => r.k))
    for (const e of deferred) if (!present.has(`${e.type} ${e.name}`)) db.exec(e.sql)
  })
  return result
}

function insertStatement(db: Db, table: TableTree): Statement<unknown[]> {
  const cols = table.columns.map((_, i) => colRef(table, i))
  return db.prepare(`INSERT INTO ${quoteIdent(table.name)} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`)
}
