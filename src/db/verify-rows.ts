import type {RawChanges} from '../snapshot/change-set.js'
import type {Statement} from 'better-sqlite3'

import type {BlobRef, SchemaEntry, TableTree} from '../snapshot/model.js'
import {displayKey, rowsEqual} from '../snapshot/rows.js'
import type {ObjectReader} from '../store/object-store.js'
import {hashOnlyWriter} from '../store/overlay-store.js'
import {quoteIdent, readSchema} from './introspect.js'
import {exactKeyWhere, keyParams} from './key-match.js'
import type {Db} from './open-database.js'
import {selectColumnsSql, toRow} from './snapshot-database.js'

/**
 * Tables a full checkout replaces whole (their CREATE statement differs from the target's, or
 * the target has no such table): every row they hold now is about to go, so a scan before
 * the checkout reads them in full rather than trust the change record for them.
 */
export function tablesReplacedWhole(db: Db, targetSchema: SchemaEntry[]): Set<string> {
  const target = new Map(targetSchema.filter((e) => e.type === 'table').map((e) => [e.name, e.sql]))
  return new Set(readSchema(db).filter((e) => e.type === 'table' && target.get(e.name) !== e.sql).map((e) => e.name))
}

/**
 * The first row a write plan would overwrite, delete or insert over whose content in the
 * database is not what the plan was computed from (null when every one is). The plan comes
 * from the working state, which the change record describes; a write that fired no trigger
 * (incremental blob I/O) leaves a row that differs from it, and overwriting that row would
 * lose a change nobody saved. Each row is read and its blobs hashed: as many as are written.
 */
export async function firstUnexpectedRow(db: Db, changes: RawChanges, objects: ObjectReader, skip: ReadonlySet<string> = new Set()): Promise<string | null> {
  for (const [name, {before, after, changes: list}] of changes) {
    if (skip.has(name) || list.length === 0) continue
    const statements = new Map<TableTree, Statement<unknown[]>>()
    const lookup = (shape: TableTree): Statement<unknown[]> => {
      let stmt = statements.get(shape)
      if (!stmt) {
        stmt = db.prepare(`SELECT ${selectColumnsSql(shape)} FROM ${quoteIdent(name)} WHERE ${exactKeyWhere(shape)}`).raw(true).safeIntegers(true)
        statements.set(shape, stmt)
      }
      return stmt
    }
    for (const c of list) {
      // A row the plan believes present is read with the working layout; a row it believes
      // absent (an insert) is looked for by the target's key.
      const shape = c.old ? before : after
      if (!shape) continue
      const probe = (c.old ?? c.new)!
      const stmt = lookup(shape)
      const key = await Promise.all(shape.key.map(async (i) => {
        const v = probe.values[i]
        if (probe.types[i] === 'i') return BigInt(v as number | bigint)
        return probe.types[i] === 'b' ? objects.get((v as BlobRef).id) : v
      }))
      const raw = stmt.get(...keyParams(shape, key, shape.key.map((i) => probe.types[i]))) as unknown[] | undefined
      const where = `table "${name}" row ${displayKey(probe, shape.key)}`
      if (!c.old) {
        if (raw) return `${where} exists`
        continue
      }
      if (!raw) return `${where} is missing`
      const {row} = await toRow(raw, hashOnlyWriter)
      if (!rowsEqual(row, c.old)) return `${where} differs`
    }
  }
  return null
}
