import type {Cell, Row, SchemaEntry, TableTree} from '../snapshot/model.js'
import {encodeSnapshot} from '../snapshot/model.js'
import {diffTables, type RowChange} from '../snapshot/diff-tables.js'
import {cellsEqual, displayKey, tileXY} from '../snapshot/rows.js'
import {TableTreeEditor} from '../snapshot/tree-editor.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import type {ObjectWriter} from '../store/object-store.js'
import type {TreeState} from '../snapshot/tree-state.js'

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

  for (const name of names) {
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
    if (!ot || !tt || !sameShape(ot, tt) || (bt && !sameShape(bt, ot))) {
      const c: Conflict = {id: `${name}\u0000*`, table: name, key: '*', kind: 'table', columns: []}
      const side = resolve(c)
      if (side) pick(side)
      else conflicts.push(c)
      continue
    }
    const merged = await mergeTable(reader, writer, name, bt, ot, tt, base.snapshot.tileTable === name || ours.snapshot.tileTable === name, resolve, conflicts)
    tables.set(name, merged)
  }

  let schema: SchemaEntry[] = ours.snapshot.schema
  const js = (s: SchemaEntry[]): string => JSON.stringify(s)
  if (js(ours.snapshot.schema) !== js(theirs.snapshot.schema)) {
    if (js(ours.snapshot.schema) === js(base.snapshot.schema)) schema = theirs.snapshot.schema
    else if (js(theirs.snapshot.schema) !== js(base.snapshot.schema)) {
      const c: Conflict = {id: '\u0000schema', table: '', key: '*', kind: 'schema', columns: []}
      const side = resolve(c)
      if (side === 'theirs') schema = theirs.snapshot.schema
      else if (!side) conflicts.push(c)
    }
  }
  // Only tables the chosen schema defines survive.
  const defined = new Set(schema.filter((e) => e.type === 'table').map((e) => e.name))
  for (const n of [...tables.keys()]) if (!defined.has(n)) tables.delete(n)

  const snapshot = {
    schema,
    tables: [...tables].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([name, v]) => ({name, id: v.id})),
    tileTable: ours.snapshot.tileTable ?? theirs.snapshot.tileTable,
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
