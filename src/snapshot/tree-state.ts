import {sameHeader} from './header.js'
import {IgnoreRules} from './ignore-rules.js'
import type {Snapshot, TableTree} from './model.js'
import {sameVersionedSchema} from './versioned-schema.js'

/** A snapshot's tables, whether from a commit or from the working database. */
export interface TreeState {
  snapshotId: string
  snapshot: Snapshot
  tables: Map<string, TableTree>
  tableIds: Map<string, string>
  /**
   * What the repository leaves out of versioning (`tilesync ignore`). Comparisons of two
   * states skip what either side's rules name; states built without rules have none.
   */
  ignore?: IgnoreRules
}

export const EMPTY_STATE: TreeState = {snapshotId: '', snapshot: {schema: [], tables: [], tileTable: null}, tables: new Map(), tableIds: new Map()}

/**
 * Whether two states hold the same versioned data: the same table objects (ignoring tables
 * either side's rules leave out) and the same versioned schema.
 */
export function sameTables(a: TreeState, b: TreeState): boolean {
  if (a.snapshotId && a.snapshotId === b.snapshotId) return true
  const rules = (a.ignore ?? IgnoreRules.NONE).union(b.ignore)
  const ids = (s: TreeState): Array<[string, string]> => [...s.tableIds].filter(([name]) => !rules.tableIgnored(name))
  const ia = ids(a)
  if (ia.length !== ids(b).length) return false
  for (const [name, id] of ia) if (b.tableIds.get(name) !== id) return false
  return sameVersionedSchema(a.snapshot.schema, b.snapshot.schema, rules) && sameHeader(a, b)
}
