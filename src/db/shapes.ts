import {TilesyncError} from '../core/errors.js'
import type {IgnoreRules} from '../snapshot/ignore-rules.js'
import {isTrackable} from './change-tracking.js'
import {isOwnTable, isSqliteInternal, listTables, OWN_TABLE_SQL, quoteIdent, tableColumns, type TableListing, VIEW_MODULES, versionsVirtualRows, virtualTableInfo} from './introspect.js'
import type {Db} from './open-database.js'
import type {TableSpec} from './table-spec.js'

/**
 * What tilesync versions in a database and what it leaves out, with the reason for each, so
 * `init` and `status` can say it plainly; and the shapes it refuses outright, before anything
 * is written, because it could not give them back exactly.
 */
export interface ShapeReport {
  /** Versioned tables and how their changes are found. */
  versioned: Array<{name: string; how: string}>
  /** Tables (and parts of tables) that are not versioned, and why nothing is lost by that or what is. */
  leftOut: Array<{name: string; why: string}>
  /** What else a snapshot keeps, and what it does not. */
  notes: string[]
}

const BUILTIN_COLLATIONS = new Set(['BINARY', 'NOCASE', 'RTRIM'])

/** Why a versioned table is read in full at every status and commit (null: the change record covers it). */
function fullReadReason(db: Db, spec: TableSpec, listing: TableListing | undefined): string | null {
  if (isTrackable(db, spec)) return null
  if (listing?.type === 'virtual') return 'read in full at each status and commit: SQLite allows no triggers on virtual tables'
  if (spec.keyKind === 'rowid') return 'read in full at each status and commit, rows keyed by rowid: it has no primary key (a VACUUM may renumber its rows, which then show as changed)'
  const indexes = db.prepare(`PRAGMA index_list(${quoteIdent(spec.name)})`).all() as Array<{unique: number; origin: string}>
  if (indexes.some((i) => i.unique === 1 && i.origin !== 'pk')) return 'read in full at each status and commit: a second UNIQUE index lets INSERT OR REPLACE delete rows without firing a trigger'
  if (spec.key.length > 4) return 'read in full at each status and commit: its key has more than 4 columns'
  return 'read in full at each status and commit: its key is not its primary key'
}

export function describeShapes(db: Db, specs: TableSpec[], options: {tracking?: boolean; ignore?: IgnoreRules} = {}): ShapeReport {
  const tables = listTables(db)
  const byName = new Map(tables.map((t) => [t.name, t]))
  const versioned = specs.map((spec) => {
    const listing = byName.get(spec.name)
    const reason = fullReadReason(db, spec, listing)
    const what = listing?.type === 'virtual' ? `${virtualTableInfo(listing.sql).module} table, its index rebuilt by SQLite from the rows; ` : ''
    const generated = tableColumns(db, spec.name).filter((c) => c.hidden === 2 || c.hidden === 3).map((c) => c.name)
    const gen = generated.length ? `; generated column${generated.length > 1 ? 's' : ''} ${generated.join(', ')} recomputed by SQLite` : ''
    const how = options.tracking === false ? 'read in full at each status and commit (change tracking is off)' : reason ?? 'change-tracked'
    return {name: spec.name, how: `${spec.isTileTable ? 'tile table, ' : ''}${what}${how}${gen}`}
  })
  const leftOut: ShapeReport['leftOut'] = []
  const virtuals = tables.filter((t) => t.type === 'virtual')
  const shadowOwner = (name: string): string | undefined => virtuals.map((v) => v.name).filter((v) => name.startsWith(`${v}_`)).sort((a, b) => b.length - a.length)[0]
  const versionedNames = new Set(specs.map((s) => s.name))
  for (const t of tables) {
    if (versionedNames.has(t.name)) continue
    // tilesync's change record and SQLite's AUTOINCREMENT table are covered by the notes, and
    // tables left out with `tilesync ignore` by the list of ignored tables.
    if (isOwnTable(t.name) || t.name === 'sqlite_sequence' || options.ignore?.tableIgnored(t.name)) continue
    if (/^sqlite_stat\d$/.test(t.name)) {
      leftOut.push({name: t.name, why: 'statistics ANALYZE gathers: run ANALYZE again after a clone'})
    } else if (isSqliteInternal(t.name)) {
      leftOut.push({name: t.name, why: 'SQLite\'s own'})
    } else if (t.type === 'shadow') {
      const owner = shadowOwner(t.name) ?? '(unknown)'
      const why = `index data of virtual table ${owner}, made again by SQLite from its rows`
      // One line per virtual table, not one per shadow table.
      const same = leftOut.find((l) => l.why === why)
      if (same) same.name += `, ${t.name}`
      else leftOut.push({name: t.name, why})
    } else if (t.type === 'virtual') {
      const info = virtualTableInfo(t.sql)
      if (info.content === '') leftOut.push({name: t.name, why: `contentless ${info.module} index: its rows cannot be read back, so a checkout or clone has the table but not its entries; fill it again from your data`})
      else if (info.content) leftOut.push({name: t.name, why: `${info.module} index over table ${info.content}: rebuilt from it after a checkout or clone`})
      else if (VIEW_MODULES.has(info.module)) leftOut.push({name: t.name, why: `${info.module} view of a full-text index: it holds nothing of its own`})
      else if (!versionsVirtualRows(info)) leftOut.push({name: t.name, why: `virtual table of module ${info.module}`})
    } else {
      leftOut.push({name: t.name, why: 'not versioned'})
    }
  }
  for (const v of virtuals) {
    const info = virtualTableInfo(v.sql)
    if (info.module !== 'fts5' || !byName.has(`${v.name}_config`)) continue
    const options = (db.prepare(`SELECT k FROM ${quoteIdent(`${v.name}_config`)} WHERE k != 'version'`).all() as Array<{k: string}>).map((r) => r.k)
    if (options.length) leftOut.push({name: `${v.name} (options ${options.join(', ')})`, why: `FTS5 options set with INSERT INTO ${v.name}(${v.name}, ...): set them again after a clone`})
  }
  const wal = String(db.pragma('journal_mode', {simple: true})).toLowerCase() === 'wal'
  const notes = [
    ...(wal ? ['WAL mode: SQLite keeps no file change counter here, so a write no trigger sees (incremental blob I/O) is not noticed by status or commit; run `tilesync commit --rescan` after one (checkout still refuses to overwrite it)'] : []),
    'kept with each snapshot: every CREATE statement (tables, indexes, views, triggers), PRAGMA user_version, PRAGMA application_id and the AUTOINCREMENT counters (sqlite_sequence)',
    'never versioned: tilesync\'s own _tilesync_changes and _tilesync_state (see `tilesync tracking`)',
    'not kept: file settings (page size, journal mode, auto_vacuum, encoding); a clone uses 16 KiB pages and a rollback journal',
  ]
  return {versioned, leftOut, notes}
}

/**
 * Refuses, with one line naming the table and what to do, the shapes tilesync cannot give back
 * exactly: virtual tables of modules it cannot read or recreate, and collations only the
 * application defines. With `data`, also what the rows hold today that it would refuse at
 * the first commit (NULL or duplicate keys), so `init` says so before anything is set up.
 */
export function refuseUnsupportedShapes(db: Db, specs: TableSpec[], options: {data?: boolean} = {}): void {
  for (const t of listTables(db)) {
    if (isOwnTable(t.name) && OWN_TABLE_SQL[t.name] !== t.sql) {
      throw new TilesyncError('UNSUPPORTED_SHAPE', `the database has its own table "${t.name}", a name reserved for tilesync's change record: it would be neither versioned nor left alone`, {
        hint: `rename it (ALTER TABLE "${t.name}" RENAME TO ...)`,
      })
    }
  }
  for (const t of listTables(db)) {
    if (t.type !== 'virtual' || isOwnTable(t.name)) continue
    const info = virtualTableInfo(t.sql)
    if (versionsVirtualRows(info) || VIEW_MODULES.has(info.module)) continue
    if ((info.module === 'fts5' || info.module === 'fts4') && info.content !== null) continue
    throw new TilesyncError('UNSUPPORTED_SHAPE', `table "${t.name}" is a virtual table of module ${info.module || '(unknown)'}, which tilesync cannot read back and recreate exactly`, {
      hint: 'tilesync versions ordinary tables and fts3/fts4/fts5 and rtree virtual tables; move its data into an ordinary table, or keep this database out of tilesync',
    })
  }
  const sql = db.prepare(`SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL`).all() as Array<{name: string; sql: string}>
  for (const e of sql) {
    if (isOwnTable(e.name) || isSqliteInternal(e.name)) continue
    for (const m of e.sql.matchAll(/\bCOLLATE\s+("(?:[^"]|"")+"|'(?:[^']|'')+'|\[[^\]]+\]|`[^`]+`|[A-Za-z_][A-Za-z0-9_$]*)/gi)) {
      const name = m[1].replace(/^["'[`]|["'\]`]$/g, '')
      if (BUILTIN_COLLATIONS.has(name.toUpperCase())) continue
      throw new TilesyncError('UNSUPPORTED_SHAPE', `"${e.name}" uses the collation ${name}, which only the application that made it defines: tilesync (and a clone) could neither compare nor recreate it`, {
        hint: 'use BINARY, NOCASE or RTRIM for that column or index',
      })
    }
  }
  if (!options.data) return
  for (const spec of specs) {
    const keyCols = spec.key.map((i) => spec.columns[i].name)
    if (spec.keyKind === 'rowid') continue
    const cols = tableColumns(db, spec.name)
    const nullable = keyCols.filter((k) => !cols.find((c) => c.name === k)?.notnull)
    const q = quoteIdent(spec.name)
    if (nullable.length) {
      const n = Number((db.prepare(`SELECT count(*) AS n FROM ${q} WHERE ${nullable.map((k) => `${quoteIdent(k)} IS NULL`).join(' OR ')}`).get() as {n: number}).n)
      if (n > 0) {
        throw new TilesyncError('UNSUPPORTED_VALUE', `table "${spec.name}" has ${n} row${n === 1 ? '' : 's'} whose key (${keyCols.join(', ')}) holds NULL (SQLite allows it unless the columns are NOT NULL): tilesync could not tell such rows apart`, {
          hint: 'give those rows a key, or declare the key columns NOT NULL',
        })
      }
    }
    const pk = cols.filter((c) => c.pk > 0).map((c) => c.name)
    if (pk.length === keyCols.length && pk.every((c) => keyCols.includes(c))) continue
    // A key that SQLite does not keep unique (`--key` on other columns) must be unique today,
    // compared exactly (as tilesync compares keys).
    const group = keyCols.map((k) => `${quoteIdent(k)} COLLATE BINARY, typeof(${quoteIdent(k)})`).join(', ')
    const dup = db.prepare(`SELECT count(*) AS keys, sum(n) AS rows FROM (SELECT count(*) AS n FROM ${q} GROUP BY ${group} HAVING count(*) > 1)`).get() as {keys: number; rows: number | null}
    if (dup.keys > 0) {
      throw new TilesyncError('UNSUPPORTED_VALUE', `the key (${keyCols.join(', ')}) of table "${spec.name}" is not unique: ${dup.rows} rows share ${dup.keys} key${dup.keys === 1 ? '' : 's'}, and tilesync would keep one row per key`, {
        hint: spec.isTileTable ? 'choose key columns that identify one row (e.g. --key zoom_level,tile_column,tile_row for MBTiles)' : 'give the table a primary key',
      })
    }
  }
}
