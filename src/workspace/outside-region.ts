import {insideBox, type PartialFilter} from '../repo/partial.js'
import {rawChanges, type RawChanges} from '../snapshot/change-set.js'
import {encodeSnapshot, type Row} from '../snapshot/model.js'
import {tileXY} from '../snapshot/rows.js'
import {TableTreeEditor} from '../snapshot/tree-editor.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import type {TreeState} from '../snapshot/tree-state.js'
import type {ObjectStore} from '../store/object-store.js'

/**
 * The working database of a partial clone (`clone --bbox`) as a whole tree state: it holds
 * the region's tiles, so a tile outside the region that the database lacks is HEAD's, not a
 * deleted one. The change record counts from the whole snapshot, so only a full rescan
 * misses those tiles; whatever the database does hold, inside the region or not, wins.
 * Tiles outside the region cannot be deleted from a partial clone.
 */
export async function carryOutsideRegion(state: TreeState, head: TreeState, bbox: PartialFilter['bbox'], io: {reader: TreeReader; store: ObjectStore}): Promise<TreeState> {
  const name = state.snapshot.tileTable
  if (!name) return state
  const now = state.tables.get(name)
  const before = head.tables.get(name)
  if (!now || !before || state.tableIds.get(name) === head.tableIds.get(name) || now.partition.kind !== 'spatial') return state
  const changes = (await rawChanges(head, state, io.reader)).get(name)?.changes ?? []
  const lost: Row[] = []
  for (const c of changes) {
    if (!c.old || c.new) continue
    const xy = tileXY(c.old, before.partition)
    if (xy && !insideBox(bbox, xy[0], xy[1])) lost.push(c.old)
  }
  if (!lost.length) return state
  const editor = new TableTreeEditor(now, now, io.reader, io.store)
  for (const row of lost) await editor.put(row)
  const built = await editor.finish()
  const tables = new Map(state.tables)
  tables.set(name, built.table)
  const tableIds = new Map(state.tableIds)
  tableIds.set(name, built.id)
  const snapshot = {...state.snapshot, tables: state.snapshot.tables.map((t) => (t.name === name ? {name, id: built.id} : t))}
  return {...state, snapshot, tables, tableIds, snapshotId: await io.store.put(encodeSnapshot(snapshot))}
}

/**
 * What a write into a partial clone's database may touch: of the tile table only the rows
 * inside the region (the others are not in the database, and stay HEAD's through
 * carryOutsideRegion); `changes` unchanged in a full repository.
 */
export function changesInRegion(changes: RawChanges, tileTable: string | null | undefined, filter: PartialFilter | null): RawChanges {
  const entry = tileTable ? changes.get(tileTable) : undefined
  const table = entry?.after ?? entry?.before
  if (!filter || !entry || !table || table.partition.kind !== 'spatial') return changes
  const out: RawChanges = new Map(changes)
  out.set(tileTable!, {...entry, changes: entry.changes.filter((c) => {
    const xy = tileXY((c.new ?? c.old)!, table.partition)
    return !xy || insideBox(filter.bbox, xy[0], xy[1])
  })})
  return out
}

/** The tables a partial clone's database holds only part of (its tile table), for applyToDatabase. */
export function partialTables(tileTable: string | null | undefined, filter: PartialFilter | null): ReadonlySet<string> | undefined {
  return filter && tileTable ? new Set([tileTable]) : undefined
}
