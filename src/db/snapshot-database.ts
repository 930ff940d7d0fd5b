import type {ObjectWriter} from '../store/object-store.js'
import {type BlobRef, type Cell, encodeSnapshot, type Row, type Snapshot, type TableTree} from '../snapshot/model.js'
import {TableTreeEditor} from '../snapshot/tree-editor.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import {readSchema, quoteIdent} from './introspect.js'
import type {Db} from './open-database.js'
import {inTransaction} from './transactions.js'
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

/** Turns SQLite values into a Row, storing each BLOB as an object (blob puts run concurrently). */
export async function toRow(raw: unknown[], blobs: ObjectWriter): Promise<{row: Row; bytes: number}> {
  let types = ''
  let bytes = 0
  const values: Cell[] = Array.from({length: raw.length})
  const puts: Array<Promise<void>> = []
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
      // Size first: the bytes may be handed to a worker and detached.
      const size = v.length
      bytes += size
      puts.push(blobs.put(v).then((id) => {
        values[i] = {id, size} satisfies BlobRef
      }))
    } else {
      throw new TypeError(`unexpected SQLite value of type ${typeof v}`)
    }
  }
  if (puts.length) await Promise.all(puts)
  return {row: {types, values}, bytes}
}

/** How much blob data may be in flight (read but not yet hashed) during a full scan. */
const WINDOW_BYTES = 24 * 1024 * 1024
const WINDOW_ROWS = 256

/** The window entry of a deleted row carries no row of its own. */
const NO_ROW: Promise<{row: Row; bytes: number}> = Promise.resolve({row: {types: '', values: []}, bytes: 0})

const blobBytesOf = (raw: unknown[]): number => raw.reduce<number>((s, v) => s + (Buffer.isBuffer(v) ? v.length : 0), 0)

export interface IncrementalBase {
  /** Tables of the baseline snapshot the change record is relative to. */
  tables: Map<string, TableTree>
  /** Changed keys per table (raw SQLite values, key columns in order, padded with NULLs). */
  changed: Map<string, unknown[][]>
  /** Tables whose record is complete; every other table is read in full. */
  tracked: Set<string>
}

function sameLayout(spec: TableSpec, table: TableTree): boolean {
  return JSON.stringify([spec.columns, spec.key, spec.keyKind, spec.partition, spec.layers]) ===
    JSON.stringify([table.columns, table.key, table.keyKind, table.partition, table.layers])
}

/** A row holding only key cells: enough to find the leaf a deleted key lived in. */
function keyOnlyRow(spec: TableSpec, key: unknown[]): Row {
  const types = Array.from({length: spec.columns.length}, () => 'n')
  const values: Cell[] = Array.from({length: spec.columns.length}, () => null)
  spec.key.forEach((col, i) => {
    const v = key[i]
    if (typeof v === 'bigint') {
      types[col] = 'i'
      values[col] = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v
    } else if (typeof v === 'number') {
      types[col] = 'r'
      values[col] = v
    } else if (typeof v === 'string') {
      types[col] = 't'
      values[col] = v
    }
  })
  return {types: types.join(''), values}
}

/**
 * Reads the database into a snapshot inside one read transaction (or the caller's), so the
 * snapshot is one consistent moment even while the pipeline keeps writing. With `incremental`,
 * tracked tables start from the baseline tree and only their changed keys are read again.
 */
export async function snapshotDatabase(db: Db, specs: TableSpec[], tileTable: string | null, sinks: SnapshotSinks, incremental?: IncrementalBase): Promise<SnapshotResult> {
  const tables = new Map<string, TableTree>()
  const tableIds = new Map<string, string>()
  const schema = await inTransaction(db, 'read', async () => {
    for (const spec of specs) {
      const base = incremental?.tables.get(spec.name)
      const useRecord = incremental !== undefined && incremental.tracked.has(spec.name) && base !== undefined && sameLayout(spec, base)
      const editor = new TableTreeEditor(spec, useRecord ? base : null, sinks.reader, sinks.trees)
      // Rows to put (and, from the change record, keys whose row is gone), in reading order.
      let items: Iterable<{raw: unknown[]} | {gone: unknown[]}>
      if (useRecord) {
        const where = spec.key.map((i) => `${quoteIdent(spec.columns[i].name)} IS ?`).join(' AND ')
        const stmt = db.prepare(`SELECT ${selectColumnsSql(spec)} FROM ${quoteIdent(spec.name)} WHERE ${where}`).raw(true).safeIntegers(true)
        const keys = incremental.changed.get(spec.name) ?? []
        items = (function* () {
          for (const key of keys) {
            const raw = stmt.get(...key.slice(0, spec.key.length)) as unknown[] | undefined
            yield raw ? {raw} : {gone: key}
          }
        })()
      } else {
        const stmt = db.prepare(`SELECT ${selectColumnsSql(spec)} FROM ${quoteIdent(spec.name)}`).raw(true).safeIntegers(true)
        items = (function* () {
          for (const raw of stmt.iterate() as Iterable<unknown[]>) yield {raw}
        })()
      }
      // Reading, hashing and writing overlap: rows are read ahead while earlier blobs are
      // still being hashed and written, within a bounded window so memory stays flat. The
      // editor gets rows in reading order.
      const window: Array<{done: Promise<{row: Row; bytes: number}>; bytes: number; gone?: unknown[]}> = []
      let windowBytes = 0
      const drainUntil = async (maxBytes: number, maxRows: number): Promise<void> => {
        while (window.length > 0 && (windowBytes > maxBytes || window.length > maxRows)) {
          const next = window.shift()!
          windowBytes -= next.bytes
          if (next.gone) {
            await editor.delete(keyOnlyRow(spec, next.gone))
            continue
          }
          const {row, bytes} = await next.done
          await editor.put(row)
          sinks.onRow?.(bytes)
        }
      }
      try {
        for (const item of items) {
          if ('gone' in item) {
            window.push({done: NO_ROW, bytes: 0, gone: item.gone})
          } else {
            const bytes = blobBytesOf(item.raw)
            const done = toRow(item.raw, sinks.blobs)
            done.catch(() => {})
            window.push({done, bytes})
            windowBytes += bytes
          }
          await drainUntil(WINDOW_BYTES, WINDOW_ROWS)
        }
        await drainUntil(-1, 0)
      } finally {
        // On failure, let every started write settle before the caller cleans up.
        await Promise.allSettled(window.map((w) => w.done))
      }
      const {id, table} = await editor.finish()
      tables.set(spec.name, table)
      tableIds.set(spec.name, id)
    }
    return readSchema(db)
  })
  const snapshot: Snapshot = {
    schema,
    tables: [...tableIds].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([name, id]) => ({name, id})),
    tileTable,
  }
  const id = await sinks.trees.put(encodeSnapshot(snapshot))
  return {id, snapshot, tables, tableIds}
}
