import {existsSync} from 'node:fs'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {readTrackingState, untrackTable} from '../db/change-tracking.js'
import {IgnoreRules, parseIgnoreEntry} from '../snapshot/ignore-rules.js'
import {listUserTables, tableColumns} from '../db/introspect.js'
import {type Db, translateSqliteError} from '../db/open-database.js'
import type {RepoConfig} from '../repo/config.js'
import type {Workspace} from '../workspace/workspace.js'

/** What is left out of versioning, and whether each entry names something in the database now. */
export interface IgnoredReport {
  entries: string[]
  tables: Array<{table: string; present: boolean}>
  columns: Array<{table: string; column: string; present: boolean}>
}

export interface IgnoreResult extends IgnoredReport {
  /** Entries this call added (ignore) or removed (unignore). */
  changed: string[]
  /** Things worth saying: an entry already there, a name not in the database yet, triggers that could not be removed yet. */
  notes: string[]
}

/** The "ignored" part of what init and status report: a small function so it merges with the rest of that report. */
export function ignoredReport(rules: IgnoreRules, db: Db | null): IgnoredReport {
  const tables = db ? new Set(listUserTables(db)) : null
  const columnsOf = (t: string): Set<string> => new Set(db && tables?.has(t) ? tableColumns(db, t).map((c) => c.name) : [])
  return {
    entries: rules.entries(),
    tables: rules.tableNames.map((table) => ({table, present: tables?.has(table) ?? false})),
    columns: rules.columnEntries.map(({table, column}) => ({table, column, present: columnsOf(table).has(column)})),
  }
}

/** One line for status and init: "ignored (not versioned): generation_queue, quadrants.flagged". */
export function formatIgnored(report: IgnoredReport): string[] {
  if (report.entries.length === 0) return []
  const absent = [...report.tables.filter((t) => !t.present).map((t) => t.table), ...report.columns.filter((c) => !c.present).map((c) => `${c.table}.${c.column}`)]
  const lines = [`Ignored (not versioned): ${report.entries.join(', ')}`]
  if (absent.length) lines.push(`  not in the database now: ${absent.join(', ')}`)
  lines.push('  (`tilesync unignore NAME` versions one again)')
  return lines
}

/**
 * Checks an entry against the repository and the database: the tile table cannot be left
 * out, nor a column that identifies rows (a key column, the tile coordinates) or one SQLite
 * computes. Names the database does not have (yet) are accepted with a note: the app may
 * create them later.
 */
export function checkEntry(entry: string, config: Pick<RepoConfig, 'tileTable' | 'keyColumns' | 'xyColumns'>, db: Db | null, notes: string[]): string {
  const {table, column} = parseIgnoreEntry(entry)
  if (column === undefined && table === config.tileTable) {
    throw new TilesyncError('BAD_ARGUMENT', `"${table}" is the tile table: it cannot be left out of versioning`, {hint: 'ignore some of its columns instead, e.g. `tilesync ignore quadrants.flagged`'})
  }
  const tables = db ? listUserTables(db) : []
  if (!tables.includes(table)) {
    notes.push(`${table} is not a table of the database (yet); it will be left out once it appears`)
    return entry
  }
  if (column === undefined) return entry
  const col = tableColumns(db!, table).find((c) => c.name === column)
  if (!col) {
    notes.push(`${table} has no column ${column} (yet); it will be left out once it appears`)
    return entry
  }
  const idColumns = new Set(table === config.tileTable ? [...(config.keyColumns ?? []), ...(config.xyColumns ?? [])] : [])
  if (col.pk > 0 || idColumns.has(column)) {
    throw new TilesyncError('BAD_ARGUMENT', `${table}.${column} identifies the table's rows and cannot be left out of versioning`, {hint: 'ignore other columns, or the whole table'})
  }
  if (col.hidden === 2 || col.hidden === 3) {
    throw new TilesyncError('BAD_ARGUMENT', `${table}.${column} is a generated column: SQLite computes it and tilesync never stores it`, {hint: 'there is nothing to ignore'})
  }
  return entry
}

function openIfPresent(ws: Workspace, readonly: boolean): Db | null {
  return existsSync(ws.repo.databasePath) ? ws.openDb(readonly) : null
}

/** `tilesync ignore ENTRY...`: records the entries and removes tilesync's triggers from newly ignored tables. */
export async function ignore(ws: Workspace, entries: string[]): Promise<IgnoreResult> {
  return ws.repo.withLock('ignore', async () => {
    const notes: string[] = []
    const db = openIfPresent(ws, false)
    try {
      const before = ws.ignoreRules()
      const checked = entries.map((e) => checkEntry(e, ws.repo.config, db, notes))
      const after = before.union(new IgnoreRules(checked))
      const changed = after.entries().filter((e) => !before.entries().includes(e))
      for (const e of new IgnoreRules(checked).entries()) if (before.entries().includes(e)) notes.push(`${e} was already ignored`)
      for (const {table, column} of after.columnEntries) if (column && after.tableIgnored(table)) notes.push(`${table}.${column} is covered by ignoring ${table}`)
      ws.repo.config.ignore = after.entries()
      await ws.repo.writeConfig()
      if (db) untrackIgnored(db, after, notes)
      return {...ignoredReport(after, db), changed, notes}
    } finally {
      db?.close()
    }
  })
}

/** `tilesync unignore ENTRY...`: versions them again from the next commit on. */
export async function unignore(ws: Workspace, entries: string[]): Promise<IgnoreResult> {
  return ws.repo.withLock('ignore', async () => {
    const notes: string[] = []
    const before = ws.ignoreRules()
    const wanted = new IgnoreRules(entries).entries()
    const unknown = wanted.filter((e) => !before.entries().includes(e))
    if (unknown.length === wanted.length) {
      throw new TilesyncError('BAD_ARGUMENT', `${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not ignored`, {hint: '`tilesync ignore` lists what is'})
    }
    for (const e of unknown) notes.push(`${e} was not ignored`)
    const after = new IgnoreRules(before.entries().filter((e) => !wanted.includes(e)))
    ws.repo.config.ignore = after.entries()
    await ws.repo.writeConfig()
    notes.push('the next commit records it (`tilesync status` shows its rows as new until then)')
    const db = openIfPresent(ws, true)
    try {
      return {...ignoredReport(after, db), changed: wanted.filter((e) => !unknown.includes(e)), notes}
    } finally {
      db?.close()
    }
  })
}

export async function listIgnored(ws: Workspace): Promise<IgnoredReport> {
  const db = openIfPresent(ws, true)
  try {
    return ignoredReport(ws.ignoreRules(), db)
  } finally {
    db?.close()
  }
}

/** Ignored tables must not have the app's every write recorded: tilesync's triggers on them go. */
function untrackIgnored(db: Db, rules: IgnoreRules, notes: string[]): void {
  if (!readTrackingState(db).installed) return
  const present = new Set((db.prepare(`SELECT tbl_name AS t FROM sqlite_master WHERE type = 'trigger'`).all() as Array<{t: string}>).map((r) => r.t))
  for (const table of rules.tableNames) {
    if (!present.has(table)) continue
    try {
      untrackTable(db, table)
    } catch (error) {
      if (!isTilesyncError(translateSqliteError(error, db.name), 'DB_LOCKED')) throw error
      notes.push(`the database is busy: tilesync's triggers on ${table} are removed at the next commit`)
    }
  }
}
