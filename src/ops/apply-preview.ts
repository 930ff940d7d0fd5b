import {cellsToWrite, fallbacksFor, planSchema} from '../db/apply-snapshot.js'
import type {IgnoreRules} from '../snapshot/ignore-rules.js'
import {readSchema, tableColumns} from '../db/introspect.js'
import type {Db} from '../db/open-database.js'
import {columnsAfter} from '../db/table-migration.js'
import type {SchemaEntry, TableTree} from '../snapshot/model.js'
import type {RawChanges} from '../snapshot/change-set.js'

/**
 * The row counts applyToDatabase would report for the same plan, computed without writing:
 * tables whose definition must be rebuilt are recreated (every target row written), tables
 * that only gain or lose columns are altered in place; then per table deletes, updates of
 * rows with at least one differing cell, and inserts. Ignored tables and columns count for
 * nothing, as they are written by nothing.
 */
export function previewApply(db: Db, changes: RawChanges, targetSchema: SchemaEntry[] | undefined, targetTables: Map<string, TableTree>, ignore?: IgnoreRules): {rowsWritten: number; rowsDeleted: number; tablesRecreated: string[]} {
  const current = readSchema(db)
  const plan = planSchema(current, {targetSchema, targetTables, ignore})
  const rules = plan.rules
  const recreate = [...plan.create.filter((n) => !rules.tableIgnored(n)), ...[...plan.tables].filter(([, p]) => p.action === 'recreate').map(([n]) => n)]
  let rowsWritten = 0
  let rowsDeleted = 0
  for (const name of recreate) rowsWritten += targetTables.get(name)?.rowCount ?? 0
  for (const [name, {before, after, changes: list}] of changes) {
    if (recreate.includes(name) || list.length === 0 || rules.tableIgnored(name)) continue
    if (targetSchema && !targetSchema.some((e) => e.type === 'table' && e.name === name)) continue
    if (targetSchema && !after) continue
    const tablePlan = plan.tables.get(name) ?? {action: 'keep' as const}
    const stored = tableColumns(db, name).filter((c) => c.hidden === 0).map((c) => c.name)
    const writable = new Set(columnsAfter(stored, tablePlan, []).filter((c) => !rules.columnsOf(name).has(c)))
    if ((after ?? before)?.keyKind === 'rowid') writable.add('rowid')
    const fallbacks = fallbacksFor(name, targetSchema, current)
    for (const c of list) {
      if (c.old && !c.new) rowsDeleted++
      else if (!c.old && c.new) rowsWritten++
      else if (c.old && c.new && cellsToWrite(before, after!, c.old, c.new, writable, fallbacks).length > 0) rowsWritten++
    }
  }
  return {rowsWritten, rowsDeleted, tablesRecreated: recreate.filter((n) => targetTables.has(n))}
}
