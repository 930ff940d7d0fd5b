import type {Statement} from 'better-sqlite3'

import type {ObjectWriter} from '../store/object-store.js'
import {type BlobRef, type Cell, encodeSnapshot, type Row, type Snapshot, type TableTree} from '../snapshot/model.js'
import {TableTreeEditor} from '../snapshot/tree-editor.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import {TilesyncError} from '../core/errors.js'
import {displayKey} from '../snapshot/rows.js'
import {readHeader, readSchema, quoteIdent} from './introspect.js'
import {exactKeyWhere, keyParams, typeLetter} from './key-match.js'
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

export function selectColumnsSql(spec: Pick<TableSpec, 'columns' | 'keyKind'>): string {
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
      const editor = new TableTreeEditor(spec, useRecord ? base : null, sinks.reader, sinks.trees, (row) => {
        throw new TilesyncError('UNSUPPORTED_VALUE', `table "${spec.name}" has more than one row with the key ${describeKey(spec, row)}: tilesync identifies rows by ${keyNames(spec)}, so it would keep only one of them; nothing was committed`, {
          hint: spec.isTileTable ? 'choose key columns that are unique (e.g. add zoom_level): `tilesync init --key COL,COL,...` in a new repository' : 'make the key unique (give the table a PRIMARY KEY or a UNIQUE index on the key columns)',
        })
      })
      // Rows to put (and, from the change record, keys whose row is gone), in reading order.
      let items: Iterable<{raw: unknown[]} | {gone: unknown[]}>
      const textCheck = new TextCheck(db, spec)
      if (useRecord) {
        // Exact lookups: under COLLATE NOCASE `=` alone would find 'A' for the recorded 'a'.
        const stmt = db.prepare(`SELECT ${selectColumnsSql(spec)} FROM ${quoteIdent(spec.name)} WHERE ${exactKeyWhere(spec)}`).raw(true).safeIntegers(true)
        const keys = incremental.changed.get(spec.name) ?? []
        const nullKeyed = db.prepare(`SELECT 1 FROM ${quoteIdent(spec.name)} WHERE ${spec.key.map((i) => `${quoteIdent(spec.columns[i].name)} IS NULL`).join(' OR ')} LIMIT 1`)
        items = (function* () {
          for (const key of keys) {
            const k = key.slice(0, spec.key.length)
            // `=` never finds a NULL key: a recorded one means such a row exists or existed.
            if (k.some((v) => v === null)) {
              if (nullKeyed.get()) refuseNullKey(spec, {types: spec.columns.map((_, i) => (spec.key.includes(i) && k[spec.key.indexOf(i)] === null ? 'n' : 'i')).join(''), values: []})
              continue
            }
            const raw = stmt.get(...keyParams(spec, k, k.map(typeLetter))) as unknown[] | undefined
            if (raw) textCheck.check(raw)
            yield raw ? {raw} : {gone: key}
          }
        })()
      } else {
        const stmt = db.prepare(`SELECT ${selectColumnsSql(spec)} FROM ${quoteIdent(spec.name)}`).raw(true).safeIntegers(true)
        items = (function* () {
          for (const raw of stmt.iterate() as Iterable<unknown[]>) {
            textCheck.check(raw)
            yield {raw}
          }
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
          refuseNullKey(spec, row)
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
    // The counters of versioned tables only: an ignored queue's moves with every job.
    const header = readHeader(db)
    const names = new Set(specs.map((s) => s.name))
    return {schema: readSchema(db), header: {...header, sequences: header.sequences.filter((q) => names.has(q.name))}}
  })
  const snapshot: Snapshot = {
    schema: schema.schema,
    tables: [...tableIds].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([name, id]) => ({name, id})),
    tileTable,
    header: schema.header,
  }
  const id = await sinks.trees.put(encodeSnapshot(snapshot))
  return {id, snapshot, tables, tableIds}
}

const keyNames = (spec: TableSpec): string => spec.key.map((i) => spec.columns[i].name).join(', ')
const describeKey = (spec: TableSpec, row: Row): string => `(${keyNames(spec)}) = (${displayKey(row, spec.key)})`

/**
 * SQLite lets a rowid table hold NULL in primary key columns (and any number of such rows);
 * tilesync could not tell those rows apart, so it refuses them rather than merge them.
 */
function refuseNullKey(spec: TableSpec, row: Row): void {
  for (const i of spec.key) {
    if (row.types[i] !== 'n') continue
    throw new TilesyncError('UNSUPPORTED_VALUE', `table "${spec.name}" has a row whose key column "${spec.columns[i].name}" is NULL (SQLite allows it unless the column is NOT NULL): tilesync identifies rows by ${keyNames(spec)} and could not tell such rows apart; nothing was committed`, {
      hint: `give those rows a key (SELECT rowid, * FROM "${spec.name}" WHERE "${spec.columns[i].name}" IS NULL lists them), or declare the key columns NOT NULL`,
    })
  }
}

/**
 * better-sqlite3 decodes TEXT as UTF-8 and turns bytes that are not valid UTF-8 into U+FFFD,
 * which would silently change the value (and merge keys that differ only there). A string
 * holding U+FFFD is read again as bytes; if those are not the string's UTF-8, tilesync
 * refuses instead of keeping something else.
 */
class TextCheck {
  private stmt: Map<number, Statement<unknown[]>> = new Map()

  constructor(private readonly db: Db, private readonly spec: TableSpec) {}

  check(raw: unknown[]): void {
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i]
      if (typeof v !== 'string' || !v.includes('\uFFFD')) continue
      if (!this.sameBytes(raw, i, v)) {
        throw new TilesyncError('UNSUPPORTED_VALUE', `table "${this.spec.name}" column "${this.spec.columns[i].name}" holds TEXT that is not valid UTF-8: tilesync (like most SQLite tools) reads TEXT as UTF-8 and would keep a different value; nothing was committed`, {
          hint: `store such bytes as BLOB: UPDATE "${this.spec.name}" SET "${this.spec.columns[i].name}" = CAST("${this.spec.columns[i].name}" AS BLOB) WHERE ...`,
        })
      }
    }
  }

  private sameBytes(raw: unknown[], i: number, decoded: string): boolean {
    const spec = this.spec
    let stmt = this.stmt.get(i)
    if (!stmt) {
      const col = spec.keyKind === 'rowid' && i === 0 ? 'rowid' : quoteIdent(spec.columns[i].name)
      stmt = this.db.prepare(`SELECT CAST(${col} AS BLOB) FROM ${quoteIdent(spec.name)} WHERE ${exactKeyWhere(spec)}`).pluck(true)
      this.stmt.set(i, stmt)
    }
    const key = spec.key.map((k) => raw[k])
    const bytes = stmt.get(...keyParams(spec, key, key.map(typeLetter))) as Buffer | null | undefined
    // Not found: the key itself was not valid UTF-8, so its decoded form finds nothing.
    return Buffer.isBuffer(bytes) && bytes.equals(Buffer.from(decoded, 'utf8'))
  }
}
