import {TilesyncError} from '../core/errors.js'
import type {RepoConfig} from '../repo/config.js'
import type {ColumnInfo, Partition} from '../snapshot/model.js'
import {IgnoreRules} from '../snapshot/ignore-rules.js'
import {listUserTables, tableColumns, virtualTableInfo} from './introspect.js'
import type {Db} from './open-database.js'

/**
 * How one table is read and written: its stored columns (generated columns excluded, since
 * SQLite recomputes them; the rowid first for tables without a primary key), its key, its
 * image layers and how its rows are partitioned into tree leaves.
 */
export interface TableSpec {
  name: string
  columns: ColumnInfo[]
  keyKind: 'pk' | 'rowid'
  key: number[]
  layers: number[]
  partition: Partition
  isTileTable: boolean
}

/** Pairs of column names that mean "x, y" when the key is a single id. */
const XY_NAMES: Array<[string, string]> = [
  ['quadrant_x', 'quadrant_y'], ['tile_x', 'tile_y'], ['x', 'y'], ['col', 'row'], ['tile_col', 'tile_row'], ['column', 'row'],
]

const isBlobType = (t: string): boolean => /BLOB/i.test(t)

export interface TileTableOptions {
  tileTable?: string
  keyColumns?: string[]
  imageColumns?: string[]
  xyColumns?: [string, string]
}

/** Picks the tile table: the configured one, else `quadrants`, else the only table with BLOB columns. */
export function detectTileTable(db: Db, wanted?: string): string {
  const tables = listUserTables(db)
  if (wanted) {
    if (!tables.includes(wanted)) {
      throw new TilesyncError('TABLE_MISSING', `the database has no table "${wanted}" (tables: ${tables.join(', ') || 'none'})`, {
        hint: 'pass the right table with `tilesync init --table NAME`',
      })
    }
    return wanted
  }
  if (tables.includes('quadrants')) return 'quadrants'
  const withBlobs = tables.filter((t) => tableColumns(db, t).some((c) => isBlobType(c.type)))
  if (withBlobs.length === 1) return withBlobs[0]
  throw new TilesyncError('TABLE_MISSING', withBlobs.length === 0
    ? `no tile table found: the database has no "quadrants" table and no table with BLOB columns`
    : `several tables could be the tile table (${withBlobs.join(', ')})`, {
    hint: 'name it with `tilesync init --table NAME`',
  })
}

/** The versioned tables: every user table but those `ignore` names, each without its ignored columns. */
/** `init --images`: every name must be a column of the tile table. */
export function checkImageColumns(spec: TableSpec, images: string[] | undefined): void {
  for (const l of images ?? []) {
    if (!spec.columns.some((c) => c.name === l)) throw new TilesyncError('BAD_ARGUMENT', `table "${spec.name}" has no image column "${l}"`, {hint: `check --images: its columns are ${spec.columns.map((c) => c.name).join(', ')}`})
  }
}

export function resolveTableSpecs(db: Db, config: Pick<RepoConfig, 'tileTable' | 'keyColumns' | 'imageColumns' | 'xyColumns' | 'ignore'>): TableSpec[] {
  const tables = listUserTables(db)
  if (!tables.includes(config.tileTable)) {
    throw new TilesyncError('TABLE_MISSING', `the database has no table "${config.tileTable}"`, {
      hint: 'check the database path in .tilesync/config.json, or re-run `tilesync init --table NAME`',
    })
  }
  const rules = new IgnoreRules(config.ignore ?? [])
  if (rules.tableIgnored(config.tileTable)) {
    throw new TilesyncError('BAD_CONFIG', `the tile table "${config.tileTable}" is listed as ignored`, {hint: `run \`tilesync unignore ${config.tileTable}\``})
  }
  return tables.filter((t) => !rules.tableIgnored(t)).map((t) => resolveTableSpec(db, t, t === config.tileTable ? config : undefined, rules.columnsOf(t)))
}

function isRtree(db: Db, name: string): boolean {
  const sql = db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`).pluck(true).get(name) as string | undefined
  return /^\s*CREATE\s+VIRTUAL\s/i.test(sql ?? '') && virtualTableInfo(sql!).module.startsWith('rtree')
}

function resolveTableSpec(db: Db, name: string, tile: TileTableOptions | undefined, ignored: ReadonlySet<string>): TableSpec {
  const all = tableColumns(db, name)
  for (const c of all) {
    if (c.pk > 0 && ignored.has(c.name)) {
      throw new TilesyncError('BAD_CONFIG', `column "${name}.${c.name}" is part of the table's key and cannot be ignored`, {hint: `run \`tilesync unignore ${name}.${c.name}\``})
    }
  }
  const stored = all.filter((c) => c.hidden === 0 && !ignored.has(c.name))
  // An R*Tree's first column is its integer key (SQLite reports no primary key for it).
  const pkCols = isRtree(db, name) ? [stored[0].name] : stored.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name)
  const keyNames = tile?.keyColumns?.length ? tile.keyColumns : pkCols

  for (const k of keyNames) {
    if (!stored.some((c) => c.name === k)) {
      throw new TilesyncError('NO_KEY', `table "${name}" has no column "${k}" to use as key`, {hint: 'check --key at `tilesync init`'})
    }
  }
  if (tile && keyNames.length === 0) {
    throw new TilesyncError('NO_KEY', `cannot tell which columns identify a tile in "${name}": it has no primary key`, {
      hint: 'name them with `tilesync init --key COL[,COL]` (e.g. --key x,y)',
    })
  }

  const keyKind: 'pk' | 'rowid' = keyNames.length > 0 ? 'pk' : 'rowid'
  const columns: ColumnInfo[] = stored.map((c) => ({name: c.name, declType: c.type}))
  if (keyKind === 'rowid') columns.unshift({name: 'rowid', declType: 'INTEGER'})
  const indexOf = (n: string): number => columns.findIndex((c) => c.name === n)
  const key = keyKind === 'rowid' ? [0] : keyNames.map(indexOf)

  let layers: number[] = []
  let partition: Partition = {kind: 'hash'}
  if (tile) {
    // A listed image column the app has since dropped is no longer a layer (the commit reports
    // the column dropped); `init` refuses a name the table never had (checkImageColumns).
    const layerNames = tile.imageColumns?.length ? tile.imageColumns.filter((n) => !ignored.has(n) && indexOf(n) >= 0) : columns.filter((c) => isBlobType(c.declType)).map((c) => c.name)
    layers = layerNames.map(indexOf)
    const xy = tile.xyColumns ?? (keyNames.length === 2 ? [keyNames[0], keyNames[1]] as [string, string] : XY_NAMES.find(([x, y]) => indexOf(x) >= 0 && indexOf(y) >= 0))
    // Spatial leaves need the partition to follow from the key alone, so x and y must be key columns.
    if (xy && keyNames.includes(xy[0]) && keyNames.includes(xy[1])) partition = {kind: 'spatial', x: indexOf(xy[0]), y: indexOf(xy[1])}
  }
  return {name, columns, keyKind, key, layers, partition, isTileTable: Boolean(tile)}
}
