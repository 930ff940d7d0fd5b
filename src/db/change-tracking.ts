import {randomBytes} from 'node:crypto'

import {CHANGES_TABLE, isKeyTrigger, isOwnName, isOwnTable, isOwnTrigger, listTables, MARKER_BODY, OWN_TABLE_SQL, ownTriggerName, quoteIdent, STATE_TABLE, tableColumns, TRIGGER_OPS} from './introspect.js'
import {TilesyncError} from '../core/errors.js'
import {type Db, translated, waitingForLock} from './open-database.js'
import {counterAtWriteStart} from './outside-writes.js'
import type {TableSpec} from './table-spec.js'

/**
 * Change tracking: triggers in the user's database record the key of every row that any
 * process inserts, updates or deletes, so status and commit read only those rows instead of
 * every blob. Everything it adds is named `_tilesync_*`, is documented in the README, and is
 * removed by `tilesync tracking off`.
 *
 * The record is relative to a baseline: the snapshot the database equalled when the record
 * was last emptied. Working state = baseline + the current value of every recorded key.
 * Whenever that cannot be trusted (triggers missing or altered, schema changed since the
 * baseline, the database copied from elsewhere), callers fall back to a full rescan.
 *
 * Every other ordinary table (ignored, or not trackable: no primary key, a second UNIQUE
 * index) gets triggers of the same names that only count its writes (`other_writes` in the
 * state table, no keys): the file change counter moving then has an explanation, and is not
 * taken for a write nobody recorded (see outside-writes.ts).
 */
export {CHANGES_TABLE, STATE_TABLE}
export const MAX_TRACKED_KEY_COLUMNS = 4

const CHANGES_SQL = OWN_TABLE_SQL[CHANGES_TABLE]
const STATE_SQL = OWN_TABLE_SQL[STATE_TABLE]

const triggerName = ownTriggerName

export interface TrackingState {
  installed: boolean
  trackingId: string | null
  baseline: string | null
  /** The file change counter after tilesync's last transaction that left database = baseline + record (see outside-writes.ts). */
  counter: number | null
  /** The record's last sequence number at that moment. */
  counterSeq: number | null
  /** Writes to tables the record does not hold, counted by their triggers; and that count at the same moment. */
  otherWrites: number | null
  counterOther: number | null
}

/** Whether a table's changes can be captured completely by row triggers. */
export function isTrackable(db: Db, spec: TableSpec): boolean {
  if (spec.keyKind !== 'pk' || spec.key.length > MAX_TRACKED_KEY_COLUMNS) return false
  // SQLite allows no triggers on virtual tables (nor on their shadow tables).
  const sql = (db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`).pluck(true).get(spec.name) as string | undefined) ?? ''
  if (/^\s*CREATE\s+VIRTUAL\s/i.test(sql)) return false
  // INSERT OR REPLACE can silently delete rows that collide on another UNIQUE index, and
  // those deletes fire no trigger: such tables are always rescanned.
  const indexes = db.prepare(`PRAGMA index_list(${quoteIdent(spec.name)})`).all() as Array<{unique: number; origin: string}>
  if (indexes.some((i) => i.unique === 1 && i.origin !== 'pk')) return false
  // The record finds a changed row by its key, which names one row only when SQLite keeps it
  // unique: the primary key (a `--key` on other columns is read in full instead).
  const pk = tableColumns(db, spec.name).filter((c) => c.pk > 0).map((c) => c.name)
  const key = spec.key.map((i) => spec.columns[i].name)
  return pk.length === key.length && pk.every((c) => key.includes(c))
}

function keyExpr(spec: TableSpec, alias: 'NEW' | 'OLD'): string {
  const cols = spec.key.map((i) => `${alias}.${quoteIdent(spec.columns[i].name)}`)
  while (cols.length < MAX_TRACKED_KEY_COLUMNS) cols.push('NULL')
  return cols.join(', ')
}

export function triggerSql(spec: TableSpec): Array<{name: string; sql: string}> {
  const t = quoteIdent(spec.name)
  const tbl = `'${spec.name.replaceAll("'", "''")}'`
  const ins = (alias: 'NEW' | 'OLD'): string => `INSERT INTO ${CHANGES_TABLE} (tbl, k0, k1, k2, k3) VALUES (${tbl}, ${keyExpr(spec, alias)});`
  return [
    {name: triggerName(spec.name, 'ins'), sql: `CREATE TRIGGER ${quoteIdent(triggerName(spec.name, 'ins'))} AFTER INSERT ON ${t} BEGIN ${ins('NEW')} END`},
    {name: triggerName(spec.name, 'upd'), sql: `CREATE TRIGGER ${quoteIdent(triggerName(spec.name, 'upd'))} AFTER UPDATE ON ${t} BEGIN ${ins('OLD')} ${ins('NEW')} END`},
    {name: triggerName(spec.name, 'del'), sql: `CREATE TRIGGER ${quoteIdent(triggerName(spec.name, 'del'))} AFTER DELETE ON ${t} BEGIN ${ins('OLD')} END`},
  ]
}

function tableExists(db: Db, name: string): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(name) !== undefined
}

export function readTrackingState(db: Db): TrackingState {
  if (!tableExists(db, STATE_TABLE) || !tableExists(db, CHANGES_TABLE)) return {installed: false, trackingId: null, baseline: null, counter: null, counterSeq: null, otherWrites: null, counterOther: null}
  const rows = db.prepare(`SELECT key, value FROM ${STATE_TABLE}`).all() as Array<{key: string; value: string}>
  const get = (k: string): string | null => rows.find((r) => r.key === k)?.value ?? null
  const int = (k: string): number | null => {
    const v = get(k)
    return v !== null && /^\d+$/.test(v) ? Number(v) : null
  }
  return {installed: true, trackingId: get('tracking_id'), baseline: get('baseline'), counter: int('file_counter'), counterSeq: int('file_counter_seq'), otherWrites: int('other_writes'), counterOther: int('file_counter_other')}
}

/** True when every trackable table has exactly our three triggers, and every other ordinary table its counting ones. */
export function triggersIntact(db: Db, specs: TableSpec[]): boolean {
  const present = new Map(ownObjects(db).filter((o) => o.type === 'trigger').map((r) => [r.name, r.sql]))
  for (const spec of specs) {
    if (!isTrackable(db, spec)) continue
    for (const t of triggerSql(spec)) if (present.get(t.name) !== t.sql) return false
  }
  for (const table of markedTables(db, specs)) for (const t of markerSql(table)) if (present.get(t.name) !== t.sql) return false
  return true
}

/** Tables whose every change the record holds now: trackable, with their three triggers as tilesync made them. */
export function recordedTables(db: Db, specs: TableSpec[]): Set<string> {
  if (!readTrackingState(db).installed) return new Set()
  const present = new Map(ownObjects(db).filter((o) => o.type === 'trigger').map((r) => [r.name, r.sql]))
  return new Set(specs.filter((s) => isTrackable(db, s) && triggerSql(s).every((t) => present.get(t.name) === t.sql)).map((s) => s.name))
}

/** Ordinary user tables whose rows the record does not hold: ignored ones, and versioned ones it cannot track. */
export function markedTables(db: Db, specs: TableSpec[]): string[] {
  const tracked = new Set(specs.filter((s) => isTrackable(db, s)).map((s) => s.name))
  return listTables(db).filter((t) => t.type === 'table' && !isOwnName(t.name) && !tracked.has(t.name)).map((t) => t.name)
}

export function markerSql(table: string): Array<{name: string; sql: string}> {
  const t = quoteIdent(table)
  return TRIGGER_OPS.map((op) => {
    const when = op === 'ins' ? 'INSERT' : op === 'upd' ? 'UPDATE' : 'DELETE'
    return {name: triggerName(table, op), sql: `CREATE TRIGGER ${quoteIdent(triggerName(table, op))} AFTER ${when} ON ${t} BEGIN ${MARKER_BODY} END`}
  })
}

/** Adds the counting triggers a table lacks (one just left out of versioning), without touching the record. */
export function installMarkers(db: Db, specs: TableSpec[]): void {
  const present = new Set(ownObjects(db).filter((o) => o.type === 'trigger').map((o) => o.name))
  const missing = markedTables(db, specs).flatMap(markerSql).filter((t) => !present.has(t.name))
  if (missing.length === 0) return
  translated(db, () => waitingForLock(db, db.transaction(() => {
    db.prepare(`INSERT OR IGNORE INTO ${STATE_TABLE} (key, value) VALUES ('other_writes', '0')`).run()
    for (const t of missing) db.exec(t.sql)
  }).immediate))
}

/**
 * Tables that carry tilesync's triggers but are not tracked (any more): a table just left out
 * of versioning (`tilesync ignore`) must not have every write of the app recorded.
 */
export function strayTrackedTables(db: Db, specs: TableSpec[]): string[] {
  const tracked = new Set(specs.filter((s) => isTrackable(db, s)).map((s) => s.name))
  const rows = db.prepare(`SELECT name, tbl_name AS tbl, sql FROM sqlite_master WHERE type = 'trigger'`).all() as Array<{name: string; tbl: string; sql: string | null}>
  return [...new Set(rows.filter((r) => isOwnTrigger(r.name, r.tbl, r.sql) && isKeyTrigger(r.sql) && !tracked.has(r.tbl)).map((r) => r.tbl))].sort()
}

/** Removes tilesync's triggers from a table and forgets the keys recorded for it, in one short write transaction. */
export function untrackTable(db: Db, table: string): void {
  translated(db, () => waitingForLock(db, db.transaction(() => {
    for (const o of ownObjects(db)) if (o.type === 'trigger' && o.tblName === table) db.exec(`DROP TRIGGER IF EXISTS ${quoteIdent(o.name)}`)
    if (tableExists(db, CHANGES_TABLE)) db.prepare(`DELETE FROM ${CHANGES_TABLE} WHERE tbl = ?`).run(table)
  }).immediate))
}

/**
 * Installs (or repairs) the tracking table and triggers in one short write transaction and
 * returns the tracking id. The record starts empty with no baseline: the next commit's full
 * scan, which starts after this, establishes one.
 */
export function installTracking(db: Db, specs: TableSpec[], trackingId?: string): string {
  const id = trackingId ?? randomBytes(8).toString('hex')
  const tx = db.transaction(() => {
    refuseNameClash(db, specs)
    removeTrackingObjects(db)
    db.exec(CHANGES_SQL)
    db.exec(STATE_SQL)
    db.prepare(`INSERT INTO ${STATE_TABLE} (key, value) VALUES ('tracking_id', ?), ('format', '1'), ('other_writes', '0')`).run(id)
    for (const spec of specs) if (isTrackable(db, spec)) for (const t of triggerSql(spec)) db.exec(t.sql)
    for (const table of markedTables(db, specs)) for (const t of markerSql(table)) db.exec(t.sql)
  })
  translated(db, () => waitingForLock(db, tx.immediate))
  return id
}

/** A user's own trigger or table that has one of the exact names tracking needs: say so, rather than fail inside SQLite. */
function refuseNameClash(db: Db, specs: TableSpec[]): void {
  const mine = new Set(ownObjects(db).map((o) => o.name))
  const wanted = new Set([CHANGES_TABLE, STATE_TABLE, ...specs.filter((s) => isTrackable(db, s)).flatMap((s) => triggerSql(s).map((t) => t.name)), ...markedTables(db, specs).flatMap((t) => markerSql(t).map((m) => m.name))])
  const taken = (db.prepare(`SELECT name FROM sqlite_master`).pluck(true).all() as string[]).filter((n) => wanted.has(n) && !mine.has(n))
  if (taken.length) {
    throw new TilesyncError('BAD_NAME', `the database already has its own "${taken[0]}", a name tilesync's change tracking needs`, {
      hint: 'rename it, or turn change tracking off with `tilesync tracking off` (status and commit then read every row)',
    })
  }
}

/**
 * tilesync's own tables and triggers, recognised by exact name (and, for a trigger, by writing
 * the change record): a pattern such as LIKE '_tilesync%' would also match the user's
 * `Xtilesync_backup` or `_TileSyncNotes` (`_` is a wildcard there and LIKE ignores case).
 */
function ownObjects(db: Db): Array<{type: string; name: string; tblName: string; sql: string}> {
  const rows = db.prepare(`SELECT type, name, tbl_name AS tblName, sql FROM sqlite_master WHERE type IN ('trigger', 'table')`).all() as Array<{type: string; name: string; tblName: string; sql: string | null}>
  return rows
    .filter((r) => (r.type === 'table' ? isOwnTable(r.name) && (r.sql === CHANGES_SQL || r.sql === STATE_SQL) : isOwnTrigger(r.name, r.tblName, r.sql)))
    .map((r) => ({type: r.type, name: r.name, tblName: r.tblName, sql: r.sql ?? ''}))
}

function removeTrackingObjects(db: Db): void {
  const own = ownObjects(db)
  for (const o of own.filter((o) => o.type === 'trigger')) db.exec(`DROP TRIGGER IF EXISTS ${quoteIdent(o.name)}`)
  for (const o of own.filter((o) => o.type === 'table')) db.exec(`DROP TABLE IF EXISTS ${quoteIdent(o.name)}`)
}

/** `tilesync tracking off`: removes every trace of tracking from the database. */
export function uninstallTracking(db: Db): void {
  translated(db, () => waitingForLock(db, db.transaction(() => removeTrackingObjects(db)).immediate))
  // sqlite_sequence is SQLite's own table for AUTOINCREMENT; drop our row from it.
  if (tableExists(db, 'sqlite_sequence')) db.prepare('DELETE FROM sqlite_sequence WHERE name = ?').run(CHANGES_TABLE)
}

export function maxSeq(db: Db): number {
  const r = db.prepare(`SELECT max(seq) AS s FROM ${CHANGES_TABLE}`).get() as {s: number | null}
  return r.s ?? 0
}

/** Distinct changed keys per table recorded after `after` up to `upTo`, as raw SQLite values (bigints for integers). */
export function changedKeys(db: Db, upTo: number, after = 0): Map<string, unknown[][]> {
  const out = new Map<string, unknown[][]>()
  // DISTINCT compares numbers by value, so it would fold the INTEGER 1 and the REAL 1.0 (two
  // different keys of an untyped column) into one: the types are part of what is distinct.
  const stmt = db.prepare(`SELECT DISTINCT tbl, k0, k1, k2, k3, typeof(k0), typeof(k1), typeof(k2), typeof(k3) FROM ${CHANGES_TABLE} WHERE seq <= ? AND seq > ?`).raw(true).safeIntegers(true)
  for (const r of stmt.iterate(upTo, after) as Iterable<unknown[]>) {
    const tbl = r[0] as string
    const list = out.get(tbl) ?? []
    list.push(r.slice(1, 5))
    out.set(tbl, list)
  }
  return out
}

function setState(db: Db, key: string, value: string | null): void {
  if (value === null) db.prepare(`DELETE FROM ${STATE_TABLE} WHERE key = ?`).run(key)
  else db.prepare(`INSERT INTO ${STATE_TABLE} (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`).run(key, value)
}

/**
 * Notes the file change counter this write transaction will leave (one more than it started
 * from), at which the database is known to equal the baseline plus the record.
 */
function noteCounter(db: Db, value: number | null): void {
  setState(db, 'file_counter', value === null ? null : String(value >>> 0))
  setState(db, 'file_counter_seq', String(maxSeq(db)))
  const other = readTrackingState(db).otherWrites
  setState(db, 'file_counter_other', other === null ? null : String(other))
}

/**
 * After a commit or a full checkout: the database equals `baseline` apart from changes after
 * `upTo`. `observed` is the file change counter the scan that made `baseline` saw, when that
 * scan ran in an earlier transaction (commit): if the file was written since by something the
 * record did not see, the signal stays raised instead of being cleared.
 */
export function resetBaseline(db: Db, baseline: string, upTo: number, observed?: number | null): void {
  const run = (): void => {
    const start = counterAtWriteStart(db)
    db.prepare(`DELETE FROM ${CHANGES_TABLE} WHERE seq <= ?`).run(upTo)
    setState(db, 'baseline', baseline)
    let counter = start === null ? null : start + 1
    if (observed !== undefined && observed !== null && start !== null && observed !== start && maxSeq(db) <= upTo) counter = observed
    noteCounter(db, counter)
  }
  if (db.inTransaction) run()
  else translated(db, () => waitingForLock(db, db.transaction(run).immediate))
}

/**
 * After tilesync wrote rows without moving the baseline (a partial checkout): the record holds
 * its writes, so if nothing outside it had been written before (`quiet`: the scan read every
 * row, or saw the file untouched since the counter was noted), nothing has been now either.
 */
export function advanceCounter(db: Db, quiet: boolean): void {
  const start = counterAtWriteStart(db)
  if (start === null || !quiet) return
  noteCounter(db, start + 1)
}

export function pendingChangeCount(db: Db): number {
  return (db.prepare(`SELECT count(*) AS n FROM ${CHANGES_TABLE}`).get() as {n: number}).n
}
