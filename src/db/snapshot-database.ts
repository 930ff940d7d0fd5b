import type {Statement} from 'better-sqlite3'

import type {ObjectWriter} from '../store/object-store.js'
import {type BlobRef, type Cell, encodeSnapshot, type Row, type Snapshot, type TableTree} from '../snapshot/model.js'
import {TableTreeEditor} from '../snapshot/tree-editor.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import {TilesyncError} from '../core/errors.js'
import {displayKey, rowKey} from '../snapshot/rows.js'
import {readHeader, readSchema, quoteIdent, STATE_TABLE, tableColumns} from './introspect.js'
import {exactKeyWhere, keyParams, typeLetter} from './key-match.js'
import {type Db, translateSqliteError, waitingForLock} from './open-database.js'
import {changedKeys, maxSeq} from './change-tracking.js'
import {fileChangeCounter} from './outside-writes.js'
import {inTransaction} from './transactions.js'
import type {TableSpec} from './table-spec.js'

export interface SnapshotResult {
  id: string
  snapshot: Snapshot
  tables: Map<string, TableTree>
  tableIds: Map<string, string>
  /** Stepped scans: the record's last sequence number and the file change counter at the snapshot's moment. */
  upTo?: number
  counter?: number | null
  /** Tables read inside one long read transaction (written all along, and not followed by the record). */
  heldLock: string[]
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

/** A row to put, or a key whose row is gone; `replace`: what the tree holds for the key goes first (a catch-up). */
type Item = {raw: unknown[]; replace?: boolean} | {gone: unknown[]; replace?: boolean}

/** One table's tree being built, and the keys a stepped scan saw twice (settled at the end). */
interface TableScan {
  spec: TableSpec
  editor: TableTreeEditor
  useRecord: boolean
  duplicates: Row[]
  rows: number
  bytes: number
}

function startTable(spec: TableSpec, base: TableTree | null, sinks: SnapshotSinks, collectDuplicates: boolean): TableScan {
  const t: TableScan = {spec, useRecord: base !== null, duplicates: [], rows: 0, bytes: 0, editor: undefined as unknown as TableTreeEditor}
  t.editor = new TableTreeEditor(spec, base, sinks.reader, sinks.trees, (row) => {
    // In a stepped scan a row the pipeline moved (INSERT OR REPLACE gives it a new rowid) is
    // read twice; whether it is a real duplicate is known once the record's keys are in.
    if (!collectDuplicates) refuseDuplicate(spec, row)
    t.duplicates.push(row)
    return undefined as never
  })
  return t
}

function refuseDuplicate(spec: TableSpec, row: Row): never {
  throw new TilesyncError('UNSUPPORTED_VALUE', `table "${spec.name}" has more than one row with the key ${describeKey(spec, row)}: tilesync identifies rows by ${keyNames(spec)}, so it would keep only one of them; nothing was committed`, {
    hint: spec.isTileTable ? 'choose key columns that are unique (e.g. add zoom_level): `tilesync init --key COL,COL,...` in a new repository' : 'make the key unique (give the table a PRIMARY KEY or a UNIQUE index on the key columns)',
  })
}

function baseFor(spec: TableSpec, incremental: IncrementalBase | undefined): TableTree | null {
  const base = incremental?.tables.get(spec.name)
  return incremental !== undefined && incremental.tracked.has(spec.name) && base !== undefined && sameLayout(spec, base) ? base : null
}

/**
 * Feeds rows into a table's tree. Reading, hashing and writing overlap: rows are read ahead
 * while earlier blobs are still being hashed and written, within a bounded window so memory
 * stays flat. The editor gets rows in reading order.
 */
async function feed(t: TableScan, items: Iterable<Item>, sinks: SnapshotSinks): Promise<void> {
  const {spec, editor} = t
  const window: Array<{done: Promise<{row: Row; bytes: number}>; bytes: number; gone?: unknown[]; replaces?: unknown[]}> = []
  let windowBytes = 0
  const drainUntil = async (maxBytes: number, maxRows: number): Promise<void> => {
    while (window.length > 0 && (windowBytes > maxBytes || window.length > maxRows)) {
      const next = window.shift()!
      windowBytes -= next.bytes
      if (next.replaces) await editor.delete(keyOnlyRow(spec, next.replaces))
      if (next.gone) {
        await editor.delete(keyOnlyRow(spec, next.gone))
        continue
      }
      const {row, bytes} = await next.done
      refuseNullKey(spec, row)
      await editor.put(row)
      t.rows++
      t.bytes += bytes
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
        window.push({done, bytes, replaces: item.replace ? spec.key.map((i) => item.raw[i]) : undefined})
        windowBytes += bytes
      }
      await drainUntil(WINDOW_BYTES, WINDOW_ROWS)
    }
    await drainUntil(-1, 0)
  } finally {
    // On failure, let every started write settle before the caller cleans up.
    await Promise.allSettled(window.map((w) => w.done))
  }
}

/** Looks up the current row of each recorded key (raw key values, padded with NULLs): a row, or the key as gone. */
function lookupKeys(db: Db, spec: TableSpec, keys: unknown[][], textCheck: TextCheck, replace: boolean): Item[] {
  // Exact lookups: under COLLATE NOCASE `=` alone would find 'A' for the recorded 'a'.
  const stmt = db.prepare(`SELECT ${selectColumnsSql(spec)} FROM ${quoteIdent(spec.name)} WHERE ${exactKeyWhere(spec)}`).raw(true).safeIntegers(true)
  const nullKeyed = db.prepare(`SELECT 1 FROM ${quoteIdent(spec.name)} WHERE ${spec.key.map((i) => `${quoteIdent(spec.columns[i].name)} IS NULL`).join(' OR ')} LIMIT 1`)
  const out: Item[] = []
  for (const key of keys) {
    const k = key.slice(0, spec.key.length)
    // `=` never finds a NULL key: a recorded one means such a row exists or existed.
    if (k.some((v) => v === null)) {
      if (nullKeyed.get()) refuseNullKey(spec, {types: spec.columns.map((_, i) => (spec.key.includes(i) && k[spec.key.indexOf(i)] === null ? 'n' : 'i')).join(''), values: []})
      continue
    }
    const raw = stmt.get(...keyParams(spec, k, k.map(typeLetter))) as unknown[] | undefined
    if (raw) textCheck.check(raw)
    out.push(raw ? {raw, replace} : {gone: key, replace})
  }
  return out
}

/**
 * What one short read transaction of a stepped scan may take: a few thousand rows, a few MB
 * of blobs or a few tens of milliseconds, whichever comes first. A writer in rollback-journal
 * mode waits at most that long for it to end.
 */
export const STEP_LIMITS = {rows: 2000, bytes: 8 * 1024 * 1024, ms: 40}

class Budget {
  private rows = 0
  private bytes = 0
  private readonly start = performance.now()

  constructor(private readonly limits: {rows: number; bytes: number; ms: number}) {}

  /** Counts one row; true when the step is full. */
  spend(bytes: number): boolean {
    this.rows++
    this.bytes += bytes
    return this.rows >= this.limits.rows || this.bytes >= this.limits.bytes || performance.now() - this.start >= this.limits.ms
  }
}

/** Runs `fn` (synchronous) in one short read transaction of its own, waiting (visibly) while a writer holds the database. */
function shortRead<T>(db: Db, fn: () => T): T {
  try {
    return waitingForLock(db, () => {
      db.exec('BEGIN')
      try {
        const result = fn()
        db.exec('COMMIT')
        return result
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK')
        throw error
      }
    })
  } catch (error) {
    throw translateSqliteError(error, db.name)
  }
}

/** Recorded keys looked up a step at a time, each step in its own short read transaction. */
function* steppedLookups(db: Db, spec: TableSpec, keys: unknown[][], textCheck: TextCheck, replace: boolean, m: ScanMoment): Generator<Item> {
  const per = Math.max(1, Math.min(m.limits?.rows ?? STEP_LIMITS.rows, 256))
  for (let i = 0; i < keys.length; i += per) {
    const items = shortRead(db, () => lookupKeys(db, spec, keys.slice(i, i + per), textCheck, replace))
    yield* items
    if (i + per < keys.length) m.between?.('chunk')
  }
}

/** How a table is read in key order a step at a time: by rowid, or by its primary key when it has no rowid. Null for virtual tables. */
function rangePlan(db: Db, spec: TableSpec): {first: Statement<unknown[]>; next: Statement<unknown[]>; width: number} | null {
  const info = db.prepare(`SELECT type, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?`).get(spec.name) as {type: string; wr: number} | undefined
  if (!info || info.type !== 'table') return null
  let order: string[]
  if (info.wr) {
    order = tableColumns(db, spec.name).filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => quoteIdent(c.name))
  } else {
    const names = new Set(tableColumns(db, spec.name).map((c) => c.name.toLowerCase()))
    const alias = ['rowid', '_rowid_', 'oid'].find((a) => !names.has(a))
    if (!alias) return null
    order = [alias]
  }
  const select = `SELECT ${selectColumnsSql(spec)}, ${order.join(', ')} FROM ${quoteIdent(spec.name)}`
  const after = order.length === 1 ? `${order[0]} > ?` : `(${order.join(', ')}) > (${order.map(() => '?').join(', ')})`
  return {
    first: db.prepare(`${select} ORDER BY ${order.join(', ')}`).raw(true).safeIntegers(true),
    next: db.prepare(`${select} WHERE ${after} ORDER BY ${order.join(', ')}`).raw(true).safeIntegers(true),
    width: spec.columns.length,
  }
}

/** Every row of a table, in key order, a step at a time, each step in its own short read transaction. */
function* steppedRows(db: Db, spec: TableSpec, plan: NonNullable<ReturnType<typeof rangePlan>>, textCheck: TextCheck, m: ScanMoment): Generator<Item> {
  let after: unknown[] | null = null
  for (;;) {
    const step = shortRead(db, () => {
      const rows: unknown[][] = []
      const budget = new Budget(m.limits ?? STEP_LIMITS)
      let done = true
      for (const raw of (after ? plan.next.iterate(...after) : plan.first.iterate()) as Iterable<unknown[]>) {
        rows.push(raw)
        // Leaving the loop resets the statement, which ends the read.
        if (budget.spend(blobBytesOf(raw))) {
          done = false
          break
        }
      }
      const out = rows.map((raw) => raw.slice(0, plan.width))
      for (const raw of out) textCheck.check(raw)
      if (rows.length) after = rows.at(-1)!.slice(plan.width)
      return {out, done}
    })
    for (const raw of step.out) yield {raw}
    if (step.done) return
    m.between?.('chunk')
  }
}

/** Every row of a table, streamed (inside the caller's transaction). */
function* streamRows(db: Db, spec: TableSpec, textCheck: TextCheck): Generator<Item> {
  const stmt = db.prepare(`SELECT ${selectColumnsSql(spec)} FROM ${quoteIdent(spec.name)}`).raw(true).safeIntegers(true)
  for (const raw of stmt.iterate() as Iterable<unknown[]>) {
    textCheck.check(raw)
    yield {raw}
  }
}

/** Every row of a (small) table, read now (inside the caller's transaction). */
function allRows(db: Db, spec: TableSpec, textCheck: TextCheck): unknown[][] {
  const rows = db.prepare(`SELECT ${selectColumnsSql(spec)} FROM ${quoteIdent(spec.name)}`).raw(true).safeIntegers(true).all() as unknown[][]
  for (const raw of rows) textCheck.check(raw)
  return rows
}

/**
 * Where a scan outside any transaction starts from, read in one short transaction before it:
 * the change record's last sequence number, the schema's version, which tables the record
 * follows, and how writes to the others are noticed.
 */
export interface ScanMoment {
  /** The record's last sequence number (0 when there is no record). */
  seq: number
  /** PRAGMA schema_version: any change to tables or triggers moves it. */
  schemaVersion: number
  /** Tables whose every change the record holds (trackable, their three triggers intact). */
  recorded: ReadonlySet<string>
  /** Writes to every other table: counted by tracking's triggers (`other_writes`), else SQLite's data_version (any other connection's commit). */
  detector: 'other_writes' | 'data_version'
  detectorValue: number
  /** The file change counter (rollback-journal mode only) and the count of other writes: a write that fired no trigger moves the first alone. */
  counter: number | null
  otherWrites: number | null
  /** Called between the short transactions (tests write there; a real pipeline writes any time). */
  between?: (step: 'chunk' | 'catch-up' | 'final') => void
  /** The size of a step, and (`smallRows`) up to how many rows an unfollowed table is read again inside the final transaction. */
  limits?: {rows: number; bytes: number; ms: number; smallRows?: number}
}

/** The schema moved, or the file was written outside the record, while a stepped scan ran: it starts again. */
export class ScanMoved extends Error {}

export function readDetector(db: Db, detector: ScanMoment['detector']): number {
  if (detector === 'data_version') return Number(db.pragma('data_version', {simple: true}))
  const v = db.prepare(`SELECT value FROM ${STATE_TABLE} WHERE key = 'other_writes'`).pluck(true).get() as string | undefined
  return Number(v ?? 0)
}

/** Catch-up rounds run outside any lock while the record grew by more than this since the last one. */
const FINAL_SEQS = 64
const MAX_ROUNDS = 20
/** An unfollowed table this small is simply read again inside the final transaction when something was written. */
const SMALL_TABLE = {rows: 5000, bytes: 4 * 1024 * 1024}
/** Times large unfollowed tables are read again before they are read inside one transaction. */
const UNFOLLOWED_ATTEMPTS = 3

/**
 * Reads the database into a snapshot of one moment without holding a read lock for the
 * duration. The tables are read a step at a time, each step its own short read transaction;
 * then, for tables the change record follows, the keys recorded since the scan began are
 * read again, in rounds outside any lock while there are many, and finally in one short read
 * transaction, whose moment the snapshot is: a row unchanged since the scan began has
 * the same value whenever it was read, and every other row is read in that transaction.
 * Tables the record does not follow are kept when nothing wrote them meanwhile (tracking's
 * counting triggers, or SQLite's data_version, say so), else read again: small ones inside
 * the final transaction, large ones a few more times and then inside one transaction (named
 * in `heldLock`), never mixed.
 */
async function snapshotInSteps(db: Db, specs: TableSpec[], sinks: SnapshotSinks, incremental: IncrementalBase | undefined, m: ScanMoment): Promise<{tables: Map<string, TableTree>; tableIds: Map<string, string>; schema: Snapshot['schema']; header: Snapshot['header']; upTo: number; counter: number | null; heldLock: string[]}> {
  const scans = new Map<string, TableScan>()
  const checks = new Map(specs.map((s) => [s.name, new TextCheck(db, s)]))
  const plans = new Map(specs.map((s) => [s.name, shortRead(db, () => rangePlan(db, s))]))
  const followed = (s: TableSpec): boolean => m.recorded.has(s.name) && plans.get(s.name) !== null
  const readStepped = async (spec: TableSpec): Promise<TableScan> => {
    const base = followed(spec) ? baseFor(spec, incremental) : null
    const t = startTable(spec, base, sinks, true)
    if (base) await feed(t, steppedLookups(db, spec, incremental!.changed.get(spec.name) ?? [], checks.get(spec.name)!, false, m), sinks)
    else await feed(t, steppedRows(db, spec, plans.get(spec.name)!, checks.get(spec.name)!, m), sinks)
    return t
  }
  // 1. Every table, a step at a time (a virtual table is read inside the final transaction).
  for (const spec of specs) if (plans.get(spec.name)) scans.set(spec.name, await readStepped(spec))
  // 2. What the pipeline changed meanwhile, outside any lock while it is much.
  const caught = new Map<string, Set<string>>()
  const note = (spec: TableSpec, keys: unknown[][]): void => {
    const set = caught.get(spec.name) ?? new Set<string>()
    for (const k of keys) set.add(rowKey(keyOnlyRow(spec, k), spec.key))
    caught.set(spec.name, set)
  }
  const hasRecord = m.recorded.size > 0
  let covered = m.seq
  for (let round = 0; hasRecord && round < MAX_ROUNDS; round++) {
    const now = shortRead(db, () => maxSeq(db))
    if (now - covered <= FINAL_SEQS) break
    const keys = shortRead(db, () => changedKeys(db, now, covered))
    for (const spec of specs) {
      const list = keys.get(spec.name)
      if (!list || !followed(spec)) continue
      note(spec, list)
      await feed(scans.get(spec.name)!, steppedLookups(db, spec, list, checks.get(spec.name)!, true, m), sinks)
    }
    covered = now
    m.between?.('catch-up')
  }
  // 3. One short read transaction: the last changes, and the checks that nothing escaped.
  const heldLock: string[] = []
  let detectorFrom = m.detectorValue
  for (let attempt = 1; ; attempt++) {
    m.between?.('final')
    const last = attempt >= UNFOLLOWED_ATTEMPTS
    const late = new Map<string, Item[]>()
    const fresh = new Map<string, unknown[][]>()
    const again: TableSpec[] = []
    let result: {schema: Snapshot['schema']; header: Snapshot['header']; upTo: number; counter: number | null} | null = null
    try {
      db.exec('BEGIN')
      if (Number(db.pragma('schema_version', {simple: true})) !== m.schemaVersion) throw new ScanMoved('the schema changed during the scan')
      const upTo = hasRecord ? maxSeq(db) : 0
      const counter = fileChangeCounter(db)
      const other = m.otherWrites === null ? null : readDetector(db, 'other_writes')
      // The file was written, yet neither the record nor the counting triggers saw it: a
      // write that fired no trigger (incremental blob I/O) may have changed a row already read.
      if (other !== null && m.counter !== null && counter !== null && counter !== m.counter && upTo === m.seq && other === m.otherWrites) throw new ScanMoved('the file was written outside the change record during the scan')
      const written = readDetector(db, m.detector) !== detectorFrom
      if (hasRecord) {
        const keys = changedKeys(db, upTo, covered)
        for (const spec of specs) {
          const list = keys.get(spec.name)
          if (!list || !followed(spec)) continue
          note(spec, list)
          late.set(spec.name, lookupKeys(db, spec, list, checks.get(spec.name)!, true))
        }
      }
      for (const spec of specs) {
        if (followed(spec)) continue
        const t = scans.get(spec.name)
        if (t && !written) continue
        if (!t || (t.rows <= (m.limits?.smallRows ?? SMALL_TABLE.rows) && t.bytes <= SMALL_TABLE.bytes)) fresh.set(spec.name, allRows(db, spec, checks.get(spec.name)!))
        else if (last) {
          // Written all along and too large to read in this transaction's few milliseconds:
          // read inside it all the same (writers wait), rather than mix two moments.
          const held = startTable(spec, null, sinks, false)
          await feed(held, streamRows(db, spec, checks.get(spec.name)!), sinks)
          scans.set(spec.name, held)
          heldLock.push(spec.name)
        } else again.push(spec)
      }
      if (again.length === 0) {
        const header = readHeader(db)
        const names = new Set(specs.map((s) => s.name))
        // The counters of versioned tables only: an ignored queue's moves with every job.
        result = {schema: readSchema(db), header: {...header, sequences: header.sequences.filter((q) => names.has(q.name))}, upTo, counter}
      } else {
        detectorFrom = readDetector(db, m.detector)
      }
      db.exec('COMMIT')
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK')
      throw error instanceof ScanMoved ? error : translateSqliteError(error, db.name)
    }
    if (result) {
      // Hashing and storing what was read there happens after the lock is gone.
      for (const [name, items] of late) await feed(scans.get(name)!, items, sinks)
      for (const spec of specs) {
        const rows = fresh.get(spec.name)
        if (!rows) continue
        const t = startTable(spec, null, sinks, false)
        await feed(t, rows.map((raw) => ({raw})), sinks)
        scans.set(spec.name, t)
      }
      // A key read twice is a real duplicate unless the record says the row changed meanwhile.
      for (const t of scans.values()) {
        const seen = caught.get(t.spec.name)
        const real = t.duplicates.find((row) => !followed(t.spec) || !seen?.has(rowKey(row, t.spec.key)))
        if (real) refuseDuplicate(t.spec, real)
      }
      const tables = new Map<string, TableTree>()
      const tableIds = new Map<string, string>()
      for (const spec of specs) {
        const {id, table} = await scans.get(spec.name)!.editor.finish()
        tables.set(spec.name, table)
        tableIds.set(spec.name, id)
      }
      return {tables, tableIds, ...result, heldLock}
    }
    // Something wrote the large tables the record does not follow: read them again.
    for (const spec of again) scans.set(spec.name, await readStepped(spec))
  }
}

/**
 * Reads the database into a snapshot of one moment, even while the pipeline keeps writing.
 * Inside the caller's transaction (or without `moment`) it is read in one read transaction;
 * given the `moment` a scan outside any transaction starts from, a step at a time (see
 * snapshotInSteps), so that no writer waits on it for long. With `incremental`, tracked tables
 * start from the baseline tree and only their changed keys are read again.
 */
export async function snapshotDatabase(db: Db, specs: TableSpec[], tileTable: string | null, sinks: SnapshotSinks, incremental?: IncrementalBase, moment?: ScanMoment): Promise<SnapshotResult> {
  let read: {tables: Map<string, TableTree>; tableIds: Map<string, string>; schema: Snapshot['schema']; header: Snapshot['header']; upTo?: number; counter?: number | null; heldLock?: string[]}
  if (moment && !db.inTransaction) read = await snapshotInSteps(db, specs, sinks, incremental, moment)
  else read = await inTransaction(db, 'read', () => snapshotInOne(db, specs, sinks, incremental))
  const snapshot: Snapshot = {
    schema: read.schema,
    tables: [...read.tableIds].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([name, id]) => ({name, id})),
    tileTable,
    header: read.header,
  }
  const id = await sinks.trees.put(encodeSnapshot(snapshot))
  return {id, snapshot, tables: read.tables, tableIds: read.tableIds, upTo: read.upTo, counter: read.counter, heldLock: read.heldLock ?? []}
}

/** The whole read inside one transaction (the caller's, or one of its own). */
async function snapshotInOne(db: Db, specs: TableSpec[], sinks: SnapshotSinks, incremental: IncrementalBase | undefined): Promise<{tables: Map<string, TableTree>; tableIds: Map<string, string>; schema: Snapshot['schema']; header: Snapshot['header']}> {
  const tables = new Map<string, TableTree>()
  const tableIds = new Map<string, string>()
  for (const spec of specs) {
    const base = baseFor(spec, incremental)
    const t = startTable(spec, base, sinks, false)
    const textCheck = new TextCheck(db, spec)
    if (base) {
      await feed(t, lookupKeys(db, spec, incremental!.changed.get(spec.name) ?? [], textCheck, false), sinks)
    } else {
      await feed(t, streamRows(db, spec, textCheck), sinks)
    }
    const {id, table} = await t.editor.finish()
    tables.set(spec.name, table)
    tableIds.set(spec.name, id)
  }
  // The counters of versioned tables only: an ignored queue's moves with every job.
  const header = readHeader(db)
  const names = new Set(specs.map((s) => s.name))
  return {tables, tableIds, schema: readSchema(db), header: {...header, sequences: header.sequences.filter((q) => names.has(q.name))}}
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
