import {randomBytes} from 'node:crypto'

import {OWN_PREFIX, quoteIdent} from './introspect.js'
import type {Db} from './open-database.js'
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
 */
export const CHANGES_TABLE = `${OWN_PREFIX}_changes`
export const STATE_TABLE = `${OWN_PREFIX}_state`
export const MAX_TRACKED_KEY_COLUMNS = 4

const triggerName = (table: string, op: 'ins' | 'upd' | 'del'): string => `${OWN_PREFIX}_${table}_${op}`

export interface TrackingState {
  installed: boolean
  trackingId: string | null
  baseline: string | null
}

/** Whether a table's changes can be captured completely by row triggers. */
export function isTrackable(db: Db, spec: TableSpec): boolean {
  if (spec.keyKind !== 'pk' || spec.key.length > MAX_TRACKED_KEY_COLUMNS) return false
  // INSERT OR REPLACE can silently delete rows that collide on another UNIQUE index, and
  // those deletes fire no trigger: such tables are always rescanned.
  const indexes = db.prepare(`PRAGMA index_list(${quoteIdent(spec.name)})`).all() as Array<{unique: number; origin: string}>
  return !indexes.some((i) => i.unique === 1 && i.origin !== 'pk')
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
  if (!tableExists(db, STATE_TABLE) || !tableExists(db, CHANGES_TABLE)) return {installed: false, trackingId: null, baseline: null}
  const rows = db.prepare(`SELECT key, value FROM ${STATE_TABLE}`).all() as Array<{key: string; value: string}>
  const get = (k: string): string | null => rows.find((r) => r.key === k)?.value ?? null
  return {installed: true, trackingId: get('tracking_id'), baseline: get('baseline')}
}

/** True when every trackable table has exactly our three triggers. */
export function triggersIntact(db: Db, specs: TableSpec[]): boolean {
  const present = new Map((db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '${OWN_PREFIX}%'`).all() as Array<{name: string; sql: string}>).map((r) => [r.name, r.sql]))
  for (const spec of specs) {
    if (!isTrackable(db, spec)) continue
    for (const t of triggerSql(spec)) if (present.get(t.name) !== t.sql) return false
  }
  return true
}

/**
 * Tables that carry tilesync's triggers but are not tracked (any more): a table just left out
 * of versioning (`tilesync ignore`) must not have every write of the app recorded.
 */
export function strayTrackedTables(db: Db, specs: TableSpec[]): string[] {
  const tracked = new Set(specs.filter((s) => isTrackable(db, s)).map((s) => s.name))
  const rows = db.prepare(`SELECT name, tbl_name AS tbl FROM sqlite_master WHERE type = 'trigger'`).all() as Array<{name: string; tbl: string}>
  const ours = (r: {name: string; tbl: string}): boolean => (['ins', 'upd', 'del'] as const).some((op) => r.name === triggerName(r.tbl, op))
  return [...new Set(rows.filter((r) => ours(r) && !tracked.has(r.tbl)).map((r) => r.tbl))].sort()
}

/** Removes tilesync's triggers from a table and forgets the keys recorded for it, in one short write transaction. */
export function untrackTable(db: Db, table: string): void {
  db.transaction(() => {
    for (const op of ['ins', 'upd', 'del'] as const) db.exec(`DROP TRIGGER IF EXISTS ${quoteIdent(triggerName(table, op))}`)
    if (tableExists(db, CHANGES_TABLE)) db.prepare(`DELETE FROM ${CHANGES_TABLE} WHERE tbl = ?`).run(table)
  }).immediate()
}

/**
 * Installs (or repairs) the tracking table and triggers in one short write transaction and
 * returns the tracking id. The record starts empty with no baseline: the next commit's full
 * scan, which starts after this, establishes one.
 */
export function installTracking(db: Db, specs: TableSpec[], trackingId?: string): string {
  const id = trackingId ?? randomBytes(8).toString('hex')
  const tx = db.transaction(() => {
    removeTrackingObjects(db)
    db.exec(`CREATE TABLE ${CHANGES_TABLE} (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, k0, k1, k2, k3)`)
    db.exec(`CREATE TABLE ${STATE_TABLE} (key TEXT PRIMARY KEY, value TEXT)`)
    db.prepare(`INSERT INTO ${STATE_TABLE} (key, value) VALUES ('tracking_id', ?), ('format', '1')`).run(id)
    for (const spec of specs) if (isTrackable(db, spec)) for (const t of triggerSql(spec)) db.exec(t.sql)
  })
  tx.immediate()
  return id
}

function removeTrackingObjects(db: Db): void {
  const own = db.prepare(`SELECT type, name FROM sqlite_master WHERE name LIKE '${OWN_PREFIX}%' AND type IN ('trigger', 'table')`).all() as Array<{type: string; name: string}>
  for (const o of own.filter((o) => o.type === 'trigger')) db.exec(`DROP TRIGGER IF EXISTS ${quoteIdent(o.name)}`)
  for (const o of own.filter((o) => o.type === 'table')) db.exec(`DROP TABLE IF EXISTS ${quoteIdent(o.name)}`)
}

/** `tilesync tracking off`: removes every trace of tracking from the database. */
export function uninstallTracking(db: Db): void {
  db.transaction(() => removeTrackingObjects(db)).immediate()
  // sqlite_sequence is SQLite's own table for AUTOINCREMENT; drop our row from it.
  if (tableExists(db, 'sqlite_sequence')) db.prepare('DELETE FROM sqlite_sequence WHERE name = ?').run(CHANGES_TABLE)
}

export function maxSeq(db: Db): number {
  const r = db.prepare(`SELECT max(seq) AS s FROM ${CHANGES_TABLE}`).get() as {s: number | null}
  return r.s ?? 0
}

/** Distinct changed keys per table up to `seq`, as raw SQLite values (bigints for integers). */
export function changedKeys(db: Db, upTo: number): Map<string, unknown[][]> {
  const out = new Map<string, unknown[][]>()
  const stmt = db.prepare(`SELECT DISTINCT tbl, k0, k1, k2, k3 FROM ${CHANGES_TABLE} WHERE seq <= ?`).raw(true).safeIntegers(true)
  for (const r of stmt.iterate(upTo) as Iterable<unknown[]>) {
    const tbl = r[0] as string
    const list = out.get(tbl) ?? []
    list.push(r.slice(1))
    out.set(tbl, list)
  }
  return out
}

/** After a commit or a full checkout: the database equals `baseline` apart from changes after `upTo`. */
export function resetBaseline(db: Db, baseline: string, upTo: number): void {
  const run = (): void => {
    db.prepare(`DELETE FROM ${CHANGES_TABLE} WHERE seq <= ?`).run(upTo)
    db.prepare(`INSERT INTO ${STATE_TABLE} (key, value) VALUES ('baseline', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`).run(baseline)
  }
  if (db.inTransaction) run()
  else db.transaction(run).immediate()
}

export function pendingChangeCount(db: Db): number {
  return (db.prepare(`SELECT count(*) AS n FROM ${CHANGES_TABLE}`).get() as {n: number}).n
}
