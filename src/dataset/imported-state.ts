import {encodeSnapshot, type Snapshot, type TableTree} from '../snapshot/model.js'
import type {TreeState} from '../snapshot/tree-state.js'
import type {Workspace} from '../workspace/workspace.js'

/**
 * What an import builds: `base` with some of its tables replaced, its snapshot stored. The
 * rest of the snapshot (schema, header fields, AUTOINCREMENT counters) is `base`'s, so an
 * import never drops what it did not read.
 */
export async function importedState(ws: Workspace, base: TreeState, tables: Map<string, TableTree>, tableIds: Map<string, string>, tileTable: string): Promise<TreeState> {
  const snapshot: Snapshot = {...base.snapshot, tables: [...tableIds].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([name, id]) => ({name, id})), tileTable}
  const snapshotId = await ws.repo.store.put(encodeSnapshot(snapshot))
  return {snapshotId, snapshot, tables, tableIds, ignore: ws.ignoreRules()}
}
