import type {Snapshot, TableTree} from './model.js'

/** A snapshot's tables, whether from a commit or from the working database. */
export interface TreeState {
  snapshotId: string
  snapshot: Snapshot
  tables: Map<string, TableTree>
  tableIds: Map<string, string>
}

export const EMPTY_STATE: TreeState = {snapshotId: '', snapshot: {schema: [], tables: [], tileTable: null}, tables: new Map(), tableIds: new Map()}

export function sameTables(a: TreeState, b: TreeState): boolean {
  if (a.snapshotId && a.snapshotId === b.snapshotId) return true
  if (a.tableIds.size !== b.tableIds.size) return false
  for (const [name, id] of a.tableIds) if (b.tableIds.get(name) !== id) return false
  return JSON.stringify(a.snapshot.schema) === JSON.stringify(b.snapshot.schema)
}
