import {readSchema} from '../db/introspect.js'
import type {Db} from '../db/open-database.js'
import type {Row, SchemaEntry, TableTree} from '../snapshot/model.js'
import {cellsEqual} from '../snapshot/rows.js'
import type {RawChanges} from '../snapshot/change-set.js'

/**
 * The row counts applyToDatabase would report for the same plan, computed without writing:
 * tables whose CREATE statement differs are recreated (every target row written), then per
 * table deletes, updates of rows with at least one differing cell, and inserts.
 */
export function previewApply(db: Db, changes: RawChanges, targetSchema: SchemaEntry[] | undefined, targetTables: Map<string, TableTree>): {rowsWritten: number; rowsDeleted: number; tablesRecreated: string[]} {
  const current = readSchema(db)
  const recreate: string[] = []
  if (targetSchema) {
    for (const e of targetSchema.filter((t) => t.type === 'table')) {
      if (current.find((c) => c.type === 'table' && c.name === e.name)?.sql !== e.sql) recreate.push(e.name)
    }
  }
  let rowsWritten = 0
  let rowsDeleted = 0
  for (const name of recreate) rowsWritten += targetTables.get(name)?.rowCount ?? 0
  for (const [name, {before, after, changes: list}] of changes) {
    if (recreate.includes(name) || list.length === 0) continue
    if (targetSchema && !targetSchema.some((e) => e.type === 'table' && e.name === name)) continue
    const shape = (after ?? before)!
    for (const c of list) {
      if (c.old && !c.new) rowsDeleted++
      else if (!c.old && c.new) rowsWritten++
      else if (c.old && c.new && differs(shape, c.old, c.new)) rowsWritten++
    }
  }
  return {rowsWritten, rowsDeleted, tablesRecreated: recreate.filter((n) => targetTables.has(n))}
}

function differs(shape: TableTree, a: Row, b: Row): boolean {
  for (let i = 0; i < shape.columns.length; i++) {
    if (a.types[i] !== b.types[i] || !cellsEqual(b.types[i], a.values[i], b.values[i])) return true
  }
  return false
}
