import type {BlobRef, Row, TableTree} from './model.js'
import {diffTables, type RowChange} from './diff-tables.js'
import {cellsEqual, displayKey, tileXY} from './rows.js'
import type {BBox, TreeReader} from './tree-reader.js'
import type {TreeState} from './tree-state.js'

export type ChangeStatus = 'added' | 'modified' | 'deleted'

export interface LayerChange {
  layer: string
  old: BlobRef | null
  new: BlobRef | null
}

export interface RowChangeView {
  key: string
  x?: number
  y?: number
  status: ChangeStatus
  /** Image layers that changed (tile table only). */
  layers: LayerChange[]
  /** Other columns whose value changed. */
  columns: string[]
}

export interface TableChanges {
  table: string
  isTileTable: boolean
  added: number
  modified: number
  deleted: number
  rows: RowChangeView[]
}

export interface ChangeSet {
  tiles: RowChangeView[]
  tables: TableChanges[]
  schemaChanged: boolean
  summary: {tilesAdded: number; tilesModified: number; tilesDeleted: number; rowsChanged: number}
}

/** Raw row changes per table, for code that writes them (checkout, merge). */
export type RawChanges = Map<string, {before: TableTree | null; after: TableTree | null; changes: RowChange[]}>

export async function rawChanges(from: TreeState, to: TreeState, reader: TreeReader, options: {bbox?: BBox} = {}): Promise<RawChanges> {
  const out: RawChanges = new Map()
  const tileTable = to.snapshot.tileTable ?? from.snapshot.tileTable
  const names = [...new Set([...from.tables.keys(), ...to.tables.keys()])].sort()
  for (const name of names) {
    // A bounding box selects tiles; other tables are outside any box.
    if (options.bbox && name !== tileTable) continue
    const before = from.tables.get(name) ?? null
    const after = to.tables.get(name) ?? null
    if (from.tableIds.get(name) === to.tableIds.get(name) && from.tableIds.has(name)) continue
    out.set(name, {before, after, changes: await diffTables(before, after, reader, options.bbox)})
  }
  return out
}

function describe(change: RowChange, before: TableTree | null, after: TableTree | null, isTile: boolean): RowChangeView {
  const shape = (after ?? before)!
  const row = (change.new ?? change.old)!
  const status: ChangeStatus = change.old === null ? 'added' : change.new === null ? 'deleted' : 'modified'
  const xy = tileXY(row, (change.new ? after : before)!.partition)
  const view: RowChangeView = {key: displayKey(row, (change.new ? after : before)!.key), status, layers: [], columns: []}
  if (xy) [view.x, view.y] = xy
  const names = [...new Set([...(before?.columns ?? []), ...(after?.columns ?? [])].map((c) => c.name))]
  const layerNames = new Set(isTile ? shape.layers.map((i) => shape.columns[i].name) : [])
  const cell = (r: Row | null, t: TableTree | null, name: string): {type: string; value: unknown} => {
    if (!r || !t) return {type: 'n', value: null}
    const i = t.columns.findIndex((c) => c.name === name)
    return i < 0 ? {type: 'n', value: null} : {type: r.types[i], value: r.values[i]}
  }
  for (const name of names) {
    const a = cell(change.old, before, name)
    const b = cell(change.new, after, name)
    const same = a.type === b.type && cellsEqual(a.type, a.value as never, b.value as never)
    if (same) continue
    if (layerNames.has(name)) {
      view.layers.push({layer: name, old: a.type === 'b' ? (a.value as BlobRef) : null, new: b.type === 'b' ? (b.value as BlobRef) : null})
    } else if (status === 'modified') view.columns.push(name)
  }
  return view
}

/** What changed between two tree states, per tile and layer and per other table. */
export async function computeChangeSet(from: TreeState, to: TreeState, reader: TreeReader, options: {bbox?: BBox} = {}): Promise<ChangeSet> {
  const raw = await rawChanges(from, to, reader, options)
  const tileTable = to.snapshot.tileTable ?? from.snapshot.tileTable
  const set: ChangeSet = {
    tiles: [], tables: [],
    schemaChanged: JSON.stringify(from.snapshot.schema) !== JSON.stringify(to.snapshot.schema) && from.snapshotId !== '',
    summary: {tilesAdded: 0, tilesModified: 0, tilesDeleted: 0, rowsChanged: 0},
  }
  for (const [name, {before, after, changes}] of raw) {
    if (changes.length === 0) continue
    const isTile = name === tileTable
    const rows = changes.map((c) => describe(c, before, after, isTile)).sort(compareViews)
    const t: TableChanges = {table: name, isTileTable: isTile, added: 0, modified: 0, deleted: 0, rows}
    for (const r of rows) t[r.status]++
    set.tables.push(t)
    set.summary.rowsChanged += rows.length
    if (isTile) {
      set.tiles = rows
      set.summary.tilesAdded = t.added
      set.summary.tilesModified = t.modified
      set.summary.tilesDeleted = t.deleted
    }
  }
  return set
}

function compareViews(a: RowChangeView, b: RowChangeView): number {
  if (a.x !== undefined && b.x !== undefined) return a.y! - b.y! || a.x - b.x!
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}

export function isEmpty(set: ChangeSet): boolean {
  return set.summary.rowsChanged === 0 && !set.schemaChanged
}
