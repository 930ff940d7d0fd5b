import {comparableTableSql, normalizeSql, parseCreateTable} from '../snapshot/schema-text.js'

/**
 * How a checkout brings one table's definition from the database's to the target's:
 *
 *   keep      the definitions are equal but for ignored columns (or whitespace): nothing to do;
 *   alter     the target only lacks some columns and/or has new ones at the end (the app added
 *             `dark_mode BLOB` at run time): ALTER TABLE DROP / ADD COLUMN, the rows stay;
 *   recreate  anything else: the table is rebuilt from the target's CREATE statement.
 *
 * Ignored columns never count: they neither cause a rebuild nor get added or dropped.
 */
export type TablePlan = {action: 'keep'} | {action: 'alter'; drop: string[]; add: Array<{name: string; text: string}>} | {action: 'recreate'}

export function planTable(currentSql: string, targetSql: string, ignored: ReadonlySet<string>): TablePlan {
  if (comparableTableSql(currentSql, ignored) === comparableTableSql(targetSql, ignored)) return {action: 'keep'}
  const cur = parseCreateTable(currentSql)
  const tgt = parseCreateTable(targetSql)
  const recreate: TablePlan = {action: 'recreate'}
  if (!cur || !tgt) return recreate
  const same = (a: string[], b: string[]): boolean => JSON.stringify(a.map(normalizeSql)) === JSON.stringify(b.map(normalizeSql))
  if (!same([cur.head, cur.tail], [tgt.head, tgt.tail]) || !same(cur.constraints, tgt.constraints)) return recreate
  const curCols = cur.columns.filter((c) => !ignored.has(c.name))
  const tgtCols = tgt.columns.filter((c) => !ignored.has(c.name))
  const tgtNames = new Set(tgtCols.map((c) => c.name))
  const curNames = new Set(cur.columns.map((c) => c.name))
  const kept = curCols.filter((c) => tgtNames.has(c.name))
  for (let i = 0; i < kept.length; i++) {
    if (tgtCols[i].name !== kept[i].name || normalizeSql(tgtCols[i].text) !== normalizeSql(kept[i].text)) return recreate
  }
  const add = tgtCols.slice(kept.length)
  // A new column whose name an ignored column of the database already uses cannot be added.
  if (add.some((c) => curNames.has(c.name))) return recreate
  return {action: 'alter', drop: curCols.filter((c) => !tgtNames.has(c.name)).map((c) => c.name), add: add.map((c) => ({name: c.name, text: c.text}))}
}

/** The stored columns a table has after the plan ran (for counting what a dry run would write). */
export function columnsAfter(current: string[], plan: TablePlan, targetColumns: string[]): string[] {
  if (plan.action === 'keep') return current
  if (plan.action === 'recreate') return targetColumns
  const dropped = new Set(plan.drop)
  return [...current.filter((c) => !dropped.has(c)), ...plan.add.map((c) => c.name)]
}
