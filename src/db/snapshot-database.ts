import type {ObjectWriter} from '../store/object-store.js'
import {type BlobRef, type Cell, encodeSnapshot, type Row, type SchemaEntry, type Snapshot, type TableTree} from '../snapshot/model.js'
import {TableTreeEditor} from '../snapshot/tree-editor.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import {readSchema, quoteIdent} from './introspect.js'
import {type Db, translateSqliteError} from './open-database.js'
import type {TableSpec} from './table-spec.js'

export interface SnapshotResult {
  id: string
  snapshot: Snapshot
  tables: Map<string, TableTree>
  tableIds: Map<string, string>
}

export interface SnapshotSinks {
  /** Where tree nodes, tables and the snapshot go. */
  trees: ObjectWriter
  /** Where blob cells go (the real store for commit; hash-only for status). */
  blobs: ObjectWriter
  reader: TreeReader
  onRow?: (bytes: number) => void
}

export function selectColumnsSql(spec: TableSpec): string {
  return spec.columns.map((c, i) => (spec.keyKind === 'rowid' && i === 0 ? 'rowid' : quoteIdent(c.name))).join(', ')
}

/** Turns SQLite values into a Row, storing each BLOB as an object. */
export async function toRow(raw: unknown[], blobs: ObjectWriter): Promise<{row: Row; bytes: number}> {
  let types = ''
  let bytes = 0
  const values: Cell[] = Array.from({length: raw.length})
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i]
    if (v === null || v === undefined) {
      types += 'n'
      values[i] = null
    } else if (typeof v === 'bigint') {
      types += 'i'
      values[i] = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v
    } else if (typeof v === 'number') {
      types += 'r'
      values[i] = v
    } else if (typeof v === 'string') {
      types += 't'
      values[i] = v
    } else if (Buffer.isBuffer(v)) {
      types += 'b'
      const ref: BlobRef = {id: await blobs.put(v), size: v.length}
      values[i] = ref
      bytes += v.length
    } else {
      throw new TypeError(`unexpected SQLite value of type ${typeof v}`)
    }
  }
  return {row: {types, values}, bytes}
}

/**
 * Reads the whole database into a snapshot inside one read transaction, so the snapshot
 * is one consistent moment even while the pipeline keeps writing.
 */
export async function snapshotDatabase(db: Db, specs: TableSpec[], tileTable: string | null, sinks: SnapshotSinks): Promise<SnapshotResult> {
  const tables = new Map<string, TableTree>()
  const tableIds = new Map<string, string>()
  let schema: SchemaEntry[]
  try {
    db.exec('BEGIN')
  } catch (error) {
    throw translateSqliteError(error, db.name)
  }
  try {
    schema = readSchema(db)
    for (const spec of specs) {
      const editor = new TableTreeEditor(spec, null, sinks.reader, sinks.trees)
      const stmt = db.prepare(`SELECT ${selectColumnsSql(spec)} FROM ${quoteIdent(spec.name)}`).raw(true).safeIntegers(true)
      for (const raw of stmt.iterate() as Iterable<unknown[]>) {
        const {row, bytes} = await toRow(raw, sinks.blobs)
        await editor.put(row)
        sinks.onRow?.(bytes)
      }
      const {id, table} = await editor.finish()
      tables.set(spec.name, table)
      tableIds.set(spec.name, id)
    }
  } catch (error) {
    throw translateSqliteError(error, db.name)
  } finally {
    if (db.inTransaction) db.exec('COMMIT')
  }
  const snapshot: Snapshot = {
    schema,
    tables: [...tableIds].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([name, id]) => ({name, id})),
    tileTable,
  }
  const id = await sinks.trees.put(encodeSnapshot(snapshot))
  return {id, snapshot, tables, tableIds}
}
