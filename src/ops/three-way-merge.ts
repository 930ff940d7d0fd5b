import type {Cell, DatabaseHeader, Row, SchemaEntry, Snapshot, TableTree} from '../snapshot/model.js'
import {encodeSnapshot} from '../snapshot/model.js'
import {diffTables, type RowChange} from '../snapshot/diff-tables.js'
import {cellsEqual, displayKey, rowKey, rowsEqual, tileXY} from '../snapshot/rows.js'
import {columnDefaults} from '../snapshot/column-defaults.js'
import {type Fallbacks, NULL_CELL} from '../snapshot/layout-compare.js'
import {TableTreeEditor} from '../snapshot/tree-editor.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import type {ObjectWriter} from '../store/object-store.js'
import type {TreeState} from '../snapshot/tree-state.js'
import {IgnoreRules} from '../snapshot/ignore-rules.js'
import {versionedSchema} from '../snapshot/versioned-schema.js'

export type Side = 'ours' | 'theirs'

export interface Conflict {
  /** Stable id used to record a resolution: table + row key ("*" for a whole table or the schema). */
  id: string
  table: string
  key: string
  x?: number
  y?: number
  kind: 'cells' | 'delete-modify' | 'table' | 'schema'
  columns: string[]
}

export interface MergeOutcome {
  state: TreeState
  conflicts: Conflict[]
}

const sameCell = (ta: string, a: Cell, tb: string, b: Cell): boolean => ta === tb && cellsEqual(ta, a, b)
const sameShape = (a: TableTree, b: TableTree): boolean =>
  JSON.stringify([a.columns, a.key, a.partition, a.keyKind]) === JSON.stringify([b.columns, b.key, b.partition, b.keyKind])

/**
 * Three-way merge per table, row and cell against the common ancestor. Changes to
 * different tiles, or to different columns of one tile, combine; the same cell changed in
 * two different ways is a conflict unless `resolve` says which side wins for it.
 * The merged tree is written to `writer`; nothing touches the database here.
 */
export async function threeWayMerge(
  reader: TreeReader, writer: ObjectWriter, base: TreeState, ours: TreeState, theirs: TreeState,
  resolve: (c: Conflict) => Side | undefined,
): Promise<MergeOutcome> {
  const conflicts: Conflict[] = []
  const tables = new Map<string, {id: string; table: TableTree}>()
  const names = [...new Set([...ours.tables.keys(), ...theirs.tables.keys()])].sort()
  const ignored = (ours.ignore ?? IgnoreRules.NONE).union(theirs.ignore)
  // The schema first: a table whose columns the two sides hold differently is merged in the
  // layout of the schema the merge keeps.
  let schema: SchemaEntry[] = ours.snapshot.schema
  // Compared as versioned schemas: what either side ignores (a queue table's DDL) never conflicts.
  const rules = (ours.ignore ?? IgnoreRules.NONE).union(theirs.ignore).union(base.ignore)
  const js = (s: SchemaEntry[]): string => JSON.stringify(versionedSchema(s, rules))
  if (js(ours.snapshot.schema) !== js(theirs.snapshot.schema)) {
    if (js(ours.snapshot.schema) === js(base.snapshot.schema)) schema = theirs.snapshot.schema
    else if (js(theirs.snapshot.schema) !== js(base.snapshot.schema)) {
      const c: Conflict = {id: '\u0000schema', table: '', key: '*', kind: 'schema', columns: []}
      const side = resolve(c)
      if (side === 'theirs') schema = theirs.snapshot.schema
      else if (!side) conflicts.push(c)
    }
  }
  const schemaSide: Side = schema === theirs.snapshot.schema ? 'theirs' : 'ours'

  for (const name of names) {
    if (ignored.tableIgnored(name)) {
      // Left out of versioning: the merge keeps what ours recorded, never theirs.
      const id = ours.tableIds.get(name)
      if (id) tables.set(name, {id, table: ours.tables.get(name)!})
      continue
    }
    const b = base.tableIds.get(name)
    const o = ours.tableIds.get(name)
    const t = theirs.tableIds.get(name)
    const pick = (side: Side): void => {
      const st = side === 'ours' ? ours : theirs
      const id = st.tableIds.get(name)
      if (id) tables.set(name, {id, table: st.tables.get(name)!})
    }
    if (o === t || t === b) {
      pick('ours')
      continue
    }
    if (o === b) {
      pick('theirs')
      continue
    }
    const ot = ours.tables.get(name)
    const tt = theirs.tables.get(name)
    const bt = base.tables.get(name) ?? null
    const isTile = base.snapshot.tileTable === name || ours.snapshot.tileTable === name
    if (ot && tt && (!sameShape(ot, tt) || (bt && !sameShape(bt, ot))) && sameRowIdentity(ot, tt) && (!bt || sameRowIdentity(bt, ot))) {
      // The same rows in other column layouts (the app added a layer on one machine): merged
      // column by column by name, in the layout of the kept schema.
      const layout = schemaSide === 'theirs' ? tt : ot
      const sql = (schemaSide === 'theirs' ? theirs : ours).snapshot.schema.find((e) => e.type === 'table' && e.name === name)?.sql
      tables.set(name, await mergeAcrossLayouts(reader, writer, name, {base: bt, ours: ot, theirs: tt, layout}, sql ? columnDefaults(sql) : new Map(), isTile, resolve, conflicts))
      continue
    }
    if (!ot || !tt || !sameShape(ot, tt) || (bt && !sameShape(bt, ot))) {
      const c: Conflict = {id: `${name}\u0000*`, table: name, key: '*', kind: 'table', columns: []}
      const side = resolve(c)
      if (side) pick(side)
      else conflicts.push(c)
      continue
    }
    const merged = await mergeTable(reader, writer, name, bt, ot, tt, isTile, resolve, conflicts)
    tables.set(name, merged)
  }

  // Only tables the chosen schema defines survive.
  const defined = new Set(schema.filter((e) => e.type === 'table').map((e) => e.name))
  for (const n of [...tables.keys()]) if (!defined.has(n)) tables.delete(n)

  const header = mergeHeader(base.snapshot.header, ours.snapshot.header, theirs.snapshot.header)
  const snapshot: Snapshot = {
    schema,
    tables: [...tables].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([name, v]) => ({name, id: v.id})),
    tileTable: ours.snapshot.tileTable ?? theirs.snapshot.tileTable,
    ...(header ? {header} : {}),
  }
  const snapshotId = await writer.put(encodeSnapshot(snapshot))
  return {
    state: {
      snapshotId, snapshot,
      tables: new Map([...tables].map(([n, v]) => [n, v.table])),
      tableIds: new Map([...tables].map(([n, v]) => [n, v.id])),
    },
    conflicts,
  }
}

/**
 * Header fields merge like cells (a side that left one as the base had it takes the other's;
 * when both changed it, ours, as the schema they version goes through its own conflict), and
 * each AUTOINCREMENT counter takes the higher side, so no id either side handed out is reused.
 */
function mergeHeader(base: DatabaseHeader | undefined, ours: DatabaseHeader | undefined, theirs: DatabaseHeader | undefined): DatabaseHeader | undefined {
  if (!ours || !theirs) return ours ?? theirs
  const pick = (b: number | undefined, o: number, t: number): number => (b !== undefined && o === b ? t : o)
  const seq = new Map<string, number | bigint>()
  for (const s of [...ours.sequences, ...theirs.sequences]) {
    const had = seq.get(s.name)
    if (had === undefined || BigInt(s.seq) > BigInt(had)) seq.set(s.name, s.seq)
  }
  return {
    userVersion: pick(base?.userVersion, ours.userVersion, theirs.userVersion),
    applicationId: pick(base?.applicationId, ours.applicationId, theirs.applicationId),
    sequences: [...seq].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([name, s]) => ({name, seq: s})),
  }
}

async function mergeTable(
  reader: TreeReader, writer: ObjectWriter, name: string, base: TableTree | null, ours: TableTree, theirs: TableTree, isTile: boolean,
  resolve: (c: Conflict) => Side | undefined, conflicts: Conflict[],
): Promise<{id: string; table: TableTree}> {
  const dOurs = new Map((await diffTables(base, ours, reader)).map((c) => [c.key, c]))
  const dTheirs = await diffTables(base, theirs, reader)
  const editor = new TableTreeEditor({...ours}, ours, reader, writer)
  const apply = async (c: RowChange): Promise<void> => {
    if (c.new) await editor.put(c.new)
    else await editor.delete(c.old!)
  }
  for (const tc of dTheirs) {
    const oc = dOurs.get(tc.key)
    if (!oc) {
      await apply(tc)
      continue
    }
    if (oc.new === null && tc.new === null) continue
    const row = (tc.new ?? tc.old)!
    const conflict: Conflict = {id: `${name}\u0000${tc.key}`, table: name, key: displayKey(row, ours.key), kind: 'cells', columns: []}
    const xy = isTile ? tileXY(row, ours.partition) : null
    if (xy) [conflict.x, conflict.y] = xy
    if (oc.new === null || tc.new === null) {
      conflict.kind = 'delete-modify'
      const side = resolve(conflict)
      if (side === 'theirs') await apply(tc)
      else if (!side) conflicts.push(conflict)
      continue
    }
    const merged = mergeRow(tc.old, oc.new, tc.new, ours, conflict.columns)
    if (conflict.columns.length > 0) {
      const side = resolve(conflict)
      if (!side) {
        conflicts.push(conflict)
        continue
      }
      const winner = side === 'ours' ? oc.new : tc.new
      for (const col of conflict.columns) {
        const i = ours.columns.findIndex((c) => c.name === col)
        merged.types[i] = winner.types[i]
        merged.values[i] = winner.values[i]
      }
    }
    await editor.put({types: merged.types.join(''), values: merged.values})
  }
  return editor.finish()
}

/** Column-wise merge; names of columns changed differently on both sides go into `conflicted`. */
function mergeRow(base: Row | null, ours: Row, theirs: Row, table: TableTree, conflicted: string[]): {types: string[]; values: Cell[]} {
  const types: string[] = []
  const values: Cell[] = []
  for (let i = 0; i < table.columns.length; i++) {
    const bt = base ? base.types[i] : 'n'
    const bv = base ? base.values[i] : null
    const [ot, ov, tt, tv] = [ours.types[i], ours.values[i], theirs.types[i], theirs.values[i]]
    if (sameCell(ot, ov, tt, tv) || sameCell(tt, tv, bt, bv)) {
      types.push(ot)
      values.push(ov)
    } else if (sameCell(ot, ov, bt, bv)) {
      types.push(tt)
      values.push(tv)
    } else {
      conflicted.push(table.columns[i].name)
      types.push(ot)
      values.push(ov)
    }
  }
  return {types, values}
}

const keyNames = (t: TableTree): string[] => t.key.map((i) => t.columns[i].name)
const partitionNames = (t: TableTree): string[] => (t.partition.kind === 'spatial' ? [t.columns[t.partition.x].name, t.columns[t.partition.y].name] : [])

/** Rows are identified and placed the same way in both layouts: same key columns, same partition. */
function sameRowIdentity(a: TableTree, b: TableTree): boolean {
  return a.keyKind === b.keyKind && a.partition.kind === b.partition.kind &&
    JSON.stringify([keyNames(a), partitionNames(a)]) === JSON.stringify([keyNames(b), partitionNames(b)])
}

/** A row of one layout in another, by column name; a column it lacks holds its default. */
function remap(row: Row, from: TableTree, to: TableTree, defaults: Fallbacks): Row {
  const at = new Map(from.columns.map((c, i) => [c.name, i]))
  let types = ''
  const values: Cell[] = []
  for (const c of to.columns) {
    const i = at.get(c.name)
    const cell = i === undefined ? defaults.get(c.name) ?? NULL_CELL : {type: row.types[i], value: row.values[i]}
    types += cell.type
    values.push(cell.value)
  }
  return {types, values}
}

/**
 * Three-way merge of a table whose sides hold their columns differently: every row of the
 * three versions is brought to `layout` by name, then merged as mergeTable merges rows (a
 * change on one side wins, the same cell changed two ways is a conflict). The whole table
 * is rebuilt, which is what a change of layout costs anyway.
 */
async function mergeAcrossLayouts(
  reader: TreeReader, writer: ObjectWriter, name: string,
  t: {base: TableTree | null; ours: TableTree; theirs: TableTree; layout: TableTree}, defaults: Fallbacks, isTile: boolean,
  resolve: (c: Conflict) => Side | undefined, conflicts: Conflict[],
): Promise<{id: string; table: TableTree}> {
  const load = async (table: TableTree | null): Promise<Map<string, Row>> => {
    const out = new Map<string, Row>()
    if (table) for await (const r of reader.rows(table)) out.set(rowKey(r, table.key), remap(r, table, t.layout, defaults))
    return out
  }
  const [b, o, th] = [await load(t.base), await load(t.ours), await load(t.theirs)]
  const same = (x: Row | undefined, y: Row | undefined): boolean => (!x || !y ? x === y : rowsEqual(x, y))
  const editor = new TableTreeEditor({...t.layout}, null, reader, writer)
  for (const key of [...new Set([...b.keys(), ...o.keys(), ...th.keys()])].sort()) {
    const [rb, ro, rt] = [b.get(key), o.get(key), th.get(key)]
    let result: Row | undefined
    if (same(rt, rb) || same(ro, rt)) result = ro
    else if (same(ro, rb)) result = rt
    else {
      const row = (rt ?? ro ?? rb)!
      const conflict: Conflict = {id: `${name}\u0000${key}`, table: name, key: displayKey(row, t.layout.key), kind: 'cells', columns: []}
      const xy = isTile ? tileXY(row, t.layout.partition) : null
      if (xy) [conflict.x, conflict.y] = xy
      if (!ro || !rt) {
        conflict.kind = 'delete-modify'
        const side = resolve(conflict)
        if (!side) conflicts.push(conflict)
        result = side === 'theirs' ? rt : ro
      } else {
        const merged = mergeRow(rb ?? null, ro, rt, t.layout, conflict.columns)
        if (conflict.columns.length > 0) {
          const side = resolve(conflict)
          if (!side) conflicts.push(conflict)
          const winner = side === 'theirs' ? rt : ro
          for (const col of conflict.columns) {
            const i = t.layout.columns.findIndex((c) => c.name === col)
            merged.types[i] = winner.types[i]
            merged.values[i] = winner.values[i]
          }
        }
        result = {types: merged.types.join(''), values: merged.values}
      }
    }
    if (result) await editor.put(result)
  }
  return editor.finish()
}
