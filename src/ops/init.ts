import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import {openDatabase} from '../db/open-database.js'
import {describeShapes, refuseUnsupportedShapes, type ShapeReport} from '../db/shapes.js'
import {detectTileTable, resolveTableSpecs, type TableSpec} from '../db/table-spec.js'
import type {RepoConfig} from '../repo/config.js'
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
  try {
    tileTable = detectTileTable(db, options.table)
    specs = resolveTableSpecs(db, {tileTable, keyColumns: options.key, imageColumns: options.images, xyColumns: options.xy})
    // Refused before .tilesync/ exists: nothing is set up for a database tilesync cannot keep.
    refuseUnsupportedShapes(db, specs, {data: true})
    report = describeShapes(db, specs)
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
    remotes: {},
  }
  await Repository.create(root, config)
  const tile = specs.find((s) => s.isTileTable)!
  return {root, database: config.database, tileTable, ...describeTile(tile), tables: specs.map((s) => s.name), report}
}
