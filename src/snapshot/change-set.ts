import {columnDefaults} from './column-defaults.js'
import {headerChanges} from './header.js'
import {IgnoreRules} from './ignore-rules.js'
import {describeSchemaChanges, sameVersionedSchema, type SchemaChange} from './versioned-schema.js'
import {type LayoutCompareOptions, LayoutPair, type TypedCell} from './layout-compare.js'
import type {BlobRef, TableTree} from './model.js'
import {diffTables, type RowChange} from './diff-tables.js'
import {displayKey, tileXY} from './rows.js'
import type {BBox, TreeReader} from './tree-reader.js'
import {sameTables, type TreeState} from './tree-state.js'

export type ChangeStatus = 'added' | 'modified' | 'deleted'

export interface LayerChange {
  layer: string
  /**
   * added: the tile gained an image in this layer (it was NULL, or the layer is new);
   * removed: its image was set to NULL (the pipeline's way of deleting a layer of a tile; the
   * tile itself stays); modified: one image replaced another.
   */
  change: 'added' | 'removed' | 'modified'
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
  /** user_version, application_id and AUTOINCREMENT counters that changed, as lines to show. */
  headerChanges: string[]
  /** What the schema change was: "column dark_mode added", per column where it can tell. */
  schema: SchemaChange[]
  tileTable: string | null
  /** The tile table's image layers on either side (a BLOB column the app added is one). */
  layers: string[]
  summary: {tilesAdded: number; tilesModified: number; tilesDeleted: number; rowsChanged: number}
}

/** Raw row changes per table, for code that writes them (checkout, merge). */
export type RawChanges = Map<string, {before: TableTree | null; after: TableTree | null; changes: RowChange[]}>

/** What both sides leave out of versioning (each state carries its repository's rules). */
export function ignoreOf(a: TreeState, b: TreeState): IgnoreRules {
  return (a.ignore ?? IgnoreRules.NONE).union(b.ignore)
}

/**
 * How rows of one table in two states are compared: ignored columns skipped, and where the
 * layouts differ, a column one side lacks counts as holding its default there.
 */
export function compareOptions(name: string, from: TreeState, to: TreeState, rules: IgnoreRules): LayoutCompareOptions {
  const a = from.tables.get(name)
  const b = to.tables.get(name)
  const skip = rules.columnsOf(name)
  if (!a || !b || JSON.stringify(a.columns) === JSON.stringify(b.columns)) return {skip}
  const fallbacks = new Map<string, TypedCell>()
  for (const st of [to, from]) {
    const sql = st.snapshot.schema.find((e) => e.type === 'table' && e.name === name)?.sql
    if (sql) for (const [k, v] of columnDefaults(sql)) if (!fallbacks.has(k)) fallbacks.set(k, v)
  }
  return {skip, fallbacks}
}

export async function rawChanges(from: TreeState, to: TreeState, reader: TreeReader, options: {bbox?: BBox} = {}): Promise<RawChanges> {
  const out: RawChanges = new Map()
  const tileTable = to.snapshot.tileTable ?? from.snapshot.tileTable
  const rules = ignoreOf(from, to)
  const names = [...new Set([...from.tables.keys(), ...to.tables.keys()])].sort()
  for (const name of names) {
    // A bounding box selects tiles; other tables are outside any box.
    if (options.bbox && name !== tileTable) continue
    if (rules.tableIgnored(name)) continue
    const before = from.tables.get(name) ?? null
    const after = to.tables.get(name) ?? null
    if (from.tableIds.get(name) === to.tableIds.get(name) && from.tableIds.has(name)) continue
    out.set(name, {before, after, changes: await diffTables(before, after, reader, options.bbox, compareOptions(name, from, to, rules))})
  }
  return out
}

function describe(change: RowChange, before: TableTree | null, after: TableTree | null, isTile: boolean, pair: LayoutPair): RowChangeView {
  const row = (change.new ?? change.old)!
  const status: ChangeStatus = change.old === null ? 'added' : change.new === null ? 'deleted' : 'modified'
  const xy = tileXY(row, (change.new ? after : before)!.partition)
  const view: RowChangeView = {key: displayKey(row, (change.new ? after : before)!.key), status, layers: [], columns: []}
  if (xy) [view.x, view.y] = xy
  // A layer of either side: one the app dropped is still a layer of the tiles that had it.
  const layerNames = new Set(isTile ? [before, after].flatMap((t) => (t ? t.layers.map((i) => t.columns[i].name) : [])) : [])
  const names = change.old && change.new ? pair.changed(change.old, change.new) : pair.names
  for (const name of names) {
    const a = change.old ? pair.cellA(change.old, name) : {type: 'n', value: null}
    const b = change.new ? pair.cellB(change.new, name) : {type: 'n', value: null}
    if (a.type === 'n' && b.type === 'n') continue
    if (layerNames.has(name)) {
      const old = a.type === 'b' ? (a.value as BlobRef) : null
      const neu = b.type === 'b' ? (b.value as BlobRef) : null
      if (!old && !neu) {
        if (status === 'modified') view.columns.push(name)
        continue
      }
      view.layers.push({layer: name, change: !old ? 'added' : !neu ? 'removed' : 'modified', old, new: neu})
    } else if (status === 'modified') view.columns.push(name)
  }
  return view
}

/** "dark_mode removed from tile 3,4", "generation added to tile 0,0", "render modified on tile 1,2". */
export function layerPhrase(layer: LayerChange, tileKey: string): string {
  return layer.change === 'removed' ? `${layer.layer} removed from tile ${tileKey}`
    : layer.change === 'added' ? `${layer.layer} added to tile ${tileKey}`
      : `${layer.layer} modified on tile ${tileKey}`
}

/** What changed between two tree states, per tile and layer and per other table. */
export async function computeChangeSet(from: TreeState, to: TreeState, reader: TreeReader, options: {bbox?: BBox} = {}): Promise<ChangeSet> {
  const raw = await rawChanges(from, to, reader, options)
  const tileTable = to.snapshot.tileTable ?? from.snapshot.tileTable
  const rules = ignoreOf(from, to)
  const schema = from.snapshotId === '' ? [] : describeSchemaChanges(from.snapshot.schema, to.snapshot.schema, rules)
  const set: ChangeSet = {
    tiles: [], tables: [],
    schemaChanged: schema.length > 0,
    schema,
    tileTable,
    layers: tileLayers(from, to, tileTable),
    headerChanges: from.snapshotId === '' ? [] : headerChanges(from, to),
    summary: {tilesAdded: 0, tilesModified: 0, tilesDeleted: 0, rowsChanged: 0},
  }
  for (const [name, {before, after, changes}] of raw) {
    if (changes.length === 0) continue
    const isTile = name === tileTable
    const compare = compareOptions(name, from, to, rules)
    const pair = new LayoutPair(before ?? {columns: []}, after ?? {columns: []}, compare)
    const rows = changes.map((c) => describe(c, before, after, isTile, pair)).sort(compareViews)
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

function tileLayers(from: TreeState, to: TreeState, tileTable: string | null): string[] {
  const out: string[] = []
  for (const st of [to, from]) {
    const t = tileTable ? st.tables.get(tileTable) : undefined
    for (const i of t?.layers ?? []) if (!out.includes(t!.columns[i].name)) out.push(t!.columns[i].name)
  }
  return out
}

function compareViews(a: RowChangeView, b: RowChangeView): number {
  if (a.x !== undefined && b.x !== undefined) return a.y! - b.y! || a.x - b.x!
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}

/**
 * Whether two states hold the same versioned data. Cheap when their table objects are equal;
 * otherwise (the same rows in two column layouts, e.g. after `tilesync ignore TABLE.COLUMN`)
 * the rows are compared by name.
 */
export async function sameContent(a: TreeState, b: TreeState, reader: TreeReader): Promise<boolean> {
  if (sameTables(a, b)) return true
  const rules = ignoreOf(a, b)
  if (!sameVersionedSchema(a.snapshot.schema, b.snapshot.schema, rules)) return false
  for (const {changes} of (await rawChanges(a, b, reader)).values()) if (changes.length > 0) return false
  return true
}

export function isEmpty(set: ChangeSet): boolean {
  return set.summary.rowsChanged === 0 && !set.schemaChanged && set.headerChanges.length === 0
}
