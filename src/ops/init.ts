import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import {IgnoreRules} from '../snapshot/ignore-rules.js'
import {openDatabase} from '../db/open-database.js'
import {describeShapes, refuseUnsupportedShapes, type ShapeReport} from '../db/shapes.js'
import {type IgnoreProposal, proposeIgnores} from '../db/queue-detect.js'
import {checkImageColumns, detectTileTable, resolveTableSpecs, type TableSpec} from '../db/table-spec.js'
import type {RepoConfig} from '../repo/config.js'
import {checkEntry} from './ignore.js'
import {Repository} from '../repo/repository.js'

export const DEFAULT_DB = 'generations/v01/quadrants.db'

export interface InitOptions {
  dir?: string
  db?: string
  generationsDir?: string
  table?: string
  key?: string[]
  images?: string[]
  xy?: [string, string]
  /** Tables / TABLE.COLUMNs to leave out of versioning (`--ignore`). */
  ignore?: string[]
  /** Leave out tables that look like work queues or logs (default true; `--no-auto-ignore`). */
  autoIgnore?: boolean
}

export interface InitResult {
  root: string
  database: string
  tileTable: string
  keyColumns: string[]
  imageColumns: string[]
  tables: string[]
  /** What is versioned (and how changes are found), what is left out and why. */
  report: ShapeReport
  /** What is left out of versioning: given with --ignore, plus what looked like a queue or log. */
  ignored: string[]
  /** Tables left out because they look like queues or logs, and why. */
  proposed: IgnoreProposal[]
  /** About --ignore entries the database does not have (yet). */
  notes: string[]
}

export function describeTile(spec: TableSpec): {keyColumns: string[]; imageColumns: string[]} {
  return {keyColumns: spec.key.map((i) => spec.columns[i].name), imageColumns: spec.layers.map((i) => spec.columns[i].name)}
}

/** Creates `.tilesync/` after checking the database can be versioned as configured. */
export async function initRepository(options: InitOptions): Promise<InitResult> {
  const root = path.resolve(options.dir ?? process.cwd())
  if (options.db && options.generationsDir) {
    throw new TilesyncError('BAD_ARGUMENT', 'give either --db or --generations-dir, not both', {hint: '--generations-dir NAME means --db generations/NAME/quadrants.db'})
  }
  const dbRel = options.db ?? (options.generationsDir ? `generations/${options.generationsDir}/quadrants.db` : DEFAULT_DB)
  const dbAbs = path.resolve(root, dbRel)
  const db = openDatabase(dbAbs, {readonly: true})
  let specs: TableSpec[]
  let tileTable: string
  let report: ShapeReport
  let proposed: IgnoreProposal[] = []
  const notes: string[] = []
  let ignore: IgnoreRules
  try {
    tileTable = detectTileTable(db, options.table)
    for (const e of options.ignore ?? []) checkEntry(e, {tileTable, keyColumns: options.key, xyColumns: options.xy}, db, notes)
    const given = new IgnoreRules(options.ignore ?? [])
    if (options.autoIgnore !== false) proposed = proposeIgnores(db, tileTable).filter((p) => !given.tableIgnored(p.table))
    ignore = given.union(new IgnoreRules(proposed.map((p) => p.table)))
    specs = resolveTableSpecs(db, {tileTable, keyColumns: options.key, imageColumns: options.images, xyColumns: options.xy, ignore: ignore.entries()})
    const tileSpec = specs.find((s) => s.isTileTable)
    if (tileSpec) checkImageColumns(tileSpec, options.images)
    // Refused before .tilesync/ exists: nothing is set up for a database tilesync cannot keep.
    refuseUnsupportedShapes(db, specs, {data: true})
    report = describeShapes(db, specs, {ignore})
  } finally {
    db.close()
  }
  const rel = path.relative(root, dbAbs)
  const config: RepoConfig = {
    version: 1,
    database: rel.startsWith('..') ? dbAbs : rel.split(path.sep).join('/'),
    tileTable,
    ...(options.key?.length ? {keyColumns: options.key} : {}),
    ...(options.images?.length ? {imageColumns: options.images} : {}),
    ...(options.xy ? {xyColumns: options.xy} : {}),
    ...(ignore.isEmpty ? {} : {ignore: ignore.entries()}),
    remotes: {},
  }
  await Repository.create(root, config)
  const tile = specs.find((s) => s.isTileTable)!
  return {root, database: config.database, tileTable, ...describeTile(tile), tables: specs.map((s) => s.name), report, ignored: ignore.entries(), proposed, notes}
}
