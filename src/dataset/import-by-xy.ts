import pLimit from 'p-limit'

import {TilesyncError} from '../core/errors.js'
import {columnDefaults, columnFacts} from '../snapshot/column-defaults.js'
import type {TypedCell} from '../snapshot/layout-compare.js'
import {type BlobRef, type Cell, encodeSnapshot, type Row, type Snapshot, type TableTree} from '../snapshot/model.js'
import {TableTreeEditor} from '../snapshot/tree-editor.js'
import {importedState} from './imported-state.js'
import type {TreeState} from '../snapshot/tree-state.js'
import type {Progress} from '../util/progress.js'
import type {Workspace} from '../workspace/workspace.js'
import {tileXYColumns} from './build-dataset.js'
import {writeTarget} from './import-dataset.js'
import {copyBesideDatabase, pipelineTarget, readPipelineFiles} from './import-pipeline.js'
import {CSV_PATH, LIMITS, MANIFEST_PATH, md5Prefix} from './layout.js'
import {Md5Cache} from './md5-cache.js'
import {PIPELINE_BOUNDS, PIPELINE_CONFIG, PIPELINE_FOLDER} from './pipeline-layout.js'
import type {DatasetSource} from './source.js'
import {parseXYCsv, type XYCsv, type XYEntry, type XYLayerFile} from './xy-layout.js'

/**
 * Imports a dataset that has no history this repository shares (the user's earlier export
 * script, the pipeline's export, a tilesync dataset pushed from elsewhere) by tile
 * coordinates, as the user's own import script did: generations.csv names each tile's
 * images with the MD5 in their names; only images whose MD5 differs from the working
 * database's are downloaded; each is checked against its name and the CSV; then the
 * database's image columns are set by (x, y) in one transaction, other columns untouched.
 * A tile the database lacks is created only when every other NOT NULL column has a default;
 * otherwise it is listed. Nothing is written if any file fails its check. HEAD does not move:
 * the user reviews and commits, as after `import DIR`.
 */

export interface XYImportOptions {
  force?: boolean
  /** Report what would change; download nothing but generations.csv, write nothing. */
  dryRun?: boolean
  progress?: Progress
}

export interface XYImportResult {
  source: string
  /** xy: images by coordinates (renders/, quadrants/, ...); pipeline: the pipeline's own export (generations/, generation_config.json). */
  layout: 'xy' | 'pipeline'
  /** The dataset carries a tilesync sidecar (its history is not used: imported by coordinates). */
  sidecar: boolean
  dryRun: boolean
  /** Tiles listed in generations.csv. */
  tiles: number
  /** Image files listed, already equal here, downloaded (with dryRun: to download), and their bytes. */
  files: {listed: number; equal: number; downloaded: number; bytes: number}
  /** Tiles whose images the import sets, tiles it creates, tiles already equal. */
  updated: number
  created: number
  unchanged: number
  /** Tiles the database lacks and cannot get: a NOT NULL column without a default (or a key beyond x, y). */
  notCreated: Array<{x: string; y: string; line: number; reason: string}>
  rowsWritten: number
  /** Commit holding the uncommitted changes that --force overwrote, if any. */
  savedAs: string | null
  /** Pipeline layout: generation_config stored in the metadata table, files copied beside the database. */
  generationConfig?: boolean
  copied?: string[]
}

interface LocalImage {
  id: string
  size: number
  md5: string
}

const bad = (label: string, why: string, hint = 'the dataset was damaged or tampered with; nothing was changed') => new TilesyncError('BAD_DATASET', `${label}: ${why}`, {hint})

export async function importByXY(ws: Workspace, src: DatasetSource, options: XYImportOptions = {}): Promise<XYImportResult> {
  const dryRun = Boolean(options.dryRun)
  if (!(await src.exists(CSV_PATH))) throw bad(src.label, `no ${CSV_PATH}`, 'import a dataset written by tilesync, the pipeline or the oxen export script')
  const csv = parseXYCsv(await src.read(CSV_PATH, LIMITS.textBytes), src.label)
  const sidecar = await src.exists(MANIFEST_PATH)
  const all = csv.entries.flatMap((e) => e.files)
  const pipeline = !sidecar && all.length > 0 && all.every((f) => f.path.startsWith(`${PIPELINE_FOLDER}/`))
  const md5 = await Md5Cache.open(ws.repo, {writeBack: !dryRun})

  // What the working database holds now, by (x, y): only images that differ travel.
  const local = await localImages(ws, csv, md5, src.label)
  // A tile that cannot be created here (a NOT NULL column without a default) is listed, and
  // its images are not downloaded; the pipeline's layout creates with 0, as its own import does.
  const notCreated: XYImportResult['notCreated'] = []
  const skip = new Set<XYEntry>()
  if (!pipeline) {
    for (const e of csv.entries) {
      if (e.files.length === 0 || local.rows.has(`${e.x},${e.y}`)) continue
      const why = local.whyNot(new Set(e.files.map((f) => f.column)))
      if (why) {
        notCreated.push({x: String(e.x), y: String(e.y), line: e.line, reason: why})
        skip.add(e)
      }
    }
  }
  const wanted = csv.entries.filter((e) => !skip.has(e)).flatMap((e) => e.files).filter((f) => local.images.get(keyOf(f))?.md5 !== f.hash)
  const base: XYImportResult = {
    source: src.label, layout: pipeline ? 'pipeline' : 'xy', sidecar, dryRun, tiles: csv.entries.length,
    files: {listed: all.length, equal: all.length - wanted.length, downloaded: 0, bytes: 0},
    updated: 0, created: 0, unchanged: 0, notCreated, rowsWritten: 0, savedAs: null,
  }
  if (dryRun) return {...base, ...dryRunCounts(csv, local, wanted, skip)}

  // Every file checked before the database is opened for writing.
  const blobs = new Map<string, BlobRef>()
  const limit = pLimit(8)
  options.progress?.start(wanted.length, `download ${src.label}`)
  try {
    await Promise.all(wanted.map((f) => limit(async () => {
      const bytes = await src.read(f.path, LIMITS.fileBytes)
      const got = md5Prefix(bytes)
      if (got !== f.hash) throw bad(src.label, `${f.path} does not match the MD5 hash in its name and in ${CSV_PATH} (its bytes hash to ${got})`)
      const id = await ws.repo.store.put(bytes)
      md5.remember(id, got)
      blobs.set(f.path, {id, size: bytes.length})
      base.files.downloaded++
      base.files.bytes += bytes.length
      options.progress?.increment(1)
    })))
  } catch (err) {
    limit.clearQueue()
    throw err
  } finally {
    options.progress?.stop()
  }
  await md5.flush()

  if (pipeline) return importPipelineLayout(ws, src, csv, local, blobs, base, Boolean(options.force))
  let stats: Pick<XYImportResult, 'updated' | 'created' | 'unchanged' | 'notCreated'> | undefined
  // Images found equal before are this database's own blobs (stored by the scan): with
  // --force the target is built from HEAD, which may need them.
  for (const f of all) {
    const mine = local.images.get(keyOf(f))
    if (!blobs.has(f.path) && mine?.md5 === f.hash) blobs.set(f.path, {id: mine.id, size: mine.size})
  }
  const written = await writeTarget(ws, async (state) => {
    const built = await xyTarget(ws, state, csv, blobs, md5, src.label)
    stats = built.stats
    return built.state
  }, {force: Boolean(options.force)})
  return {...base, ...stats!, rowsWritten: written.rowsWritten, savedAs: written.savedAs}
}

const keyOf = (f: {column: string; path: string}, xy?: {x: bigint; y: bigint}) => {
  if (xy) return `${xy.x},${xy.y},${f.column}`
  // The name carries the coordinates: <x>_<y>_<hash>.png.
  const [x, y] = f.path.split('/')[1].split('_')
  return `${BigInt(x)},${BigInt(y)},${f.column}`
}

/** The working database's image per (x, y, column) the CSV names, with its MD5 prefix; and which tiles exist. */
interface LocalTiles {
  images: Map<string, LocalImage>
  rows: Set<string>
  /** Why a missing tile with these image columns cannot be created; null when it can. */
  whyNot: (given: Set<string>) => string | null
}

async function localImages(ws: Workspace, csv: XYCsv, md5: Md5Cache, label: string): Promise<LocalTiles> {
  const db = ws.openDb(true)
  let state: TreeState
  try {
    state = (await ws.scan(db, {store: true})).state
  } finally {
    db.close()
  }
  const tileName = state.snapshot.tileTable ?? ws.repo.config.tileTable
  const tile = state.tables.get(tileName)
  if (!tile) throw bad(label, `the database has no tile table "${tileName}" to import into`, 'check `tilesync init` settings')
  const cols = columnIndexes(tile, csv.columns, label)
  const [xi, yi] = tileXYColumns(tile, ws.repo.config.xyColumns)
  const images = new Map<string, LocalImage>()
  const rows = new Set<string>()
  for await (const row of ws.reader.rows(tile)) {
    if (row.types[xi] !== 'i' || row.types[yi] !== 'i') continue
    const xy = `${BigInt(row.values[xi] as number | bigint)},${BigInt(row.values[yi] as number | bigint)}`
    rows.add(xy)
    for (const [column, i] of cols) {
      if (row.types[i] !== 'b') continue
      const {id, size} = row.values[i] as BlobRef
      images.set(`${xy},${column}`, {id, size, md5: await md5.md5Of(id, ws.repo.store)})
    }
  }
  const sql = state.snapshot.schema.find((e) => e.type === 'table' && e.name === tileName)?.sql ?? ''
  return {images, rows, whyNot: (given) => whyNotCreatable(tile, sql, [xi, yi], given)}
}

/**
 * Why a tile the database lacks cannot be created from `given` image columns: a key beyond
 * x, y, or a NOT NULL column without a default that the dataset does not fill. null: it can.
 */
function whyNotCreatable(tile: TableTree, sql: string, xy: [number, number], given: Set<string>): string | null {
  const [xi, yi] = xy
  if (!(tile.keyKind === 'pk' && tile.key.every((k) => k === xi || k === yi))) return `"${tile.name}" is keyed by more than x, y`
  const defaults = columnDefaults(sql)
  const facts = columnFacts(sql)
  const lacking = tile.columns.filter((c, i) => i !== xi && i !== yi && !given.has(c.name) && facts.get(c.name)?.notNull && !facts.get(c.name)?.computed && !defaults.has(c.name)).map((c) => c.name)
  return lacking.length > 0 ? `NOT NULL without a default: ${lacking.join(', ')}` : null
}

function columnIndexes(tile: TableTree, columns: string[], label: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const c of columns) {
    const i = tile.columns.findIndex((col) => col.name === c)
    if (i < 0) throw bad(label, `the dataset has images for a column "${c}" that the tile table "${tile.name}" does not have`, 'import into the database the dataset was exported from; nothing was changed')
    out.set(c, i)
  }
  return out
}

/** What would change: tiles with an image to set, existing or not (whether a missing one can be created is decided when writing). */
function dryRunCounts(csv: XYCsv, local: {rows: Set<string>}, wanted: XYLayerFile[], skip: Set<XYEntry>): Partial<XYImportResult> {
  const changing = new Set(wanted.map((f) => keyOf(f).split(',').slice(0, 2).join(',')))
  let updated = 0
  let created = 0
  for (const e of csv.entries) {
    const xy = `${e.x},${e.y}`
    if (!changing.has(xy)) continue
    if (local.rows.has(xy)) updated++
    else created++
  }
  const listed = csv.entries.reduce((n, e) => n + e.files.length, 0)
  return {files: {listed, equal: listed - wanted.length, downloaded: wanted.length, bytes: 0}, updated, created, unchanged: csv.entries.length - updated - created - skip.size}
}

/**
 * The working state with every CSV tile's images set by (x, y). Images the pre-read found
 * equal were not downloaded: if the database changed meanwhile so that one now differs, the
 * import stops (DB_CHANGED) rather than guess.
 */
async function xyTarget(ws: Workspace, base: TreeState, csv: XYCsv, blobs: Map<string, BlobRef>, md5: Md5Cache, label: string): Promise<{state: TreeState; stats: Pick<XYImportResult, 'updated' | 'created' | 'unchanged' | 'notCreated'>}> {
  const tileName = base.snapshot.tileTable ?? ws.repo.config.tileTable
  const tile = base.tables.get(tileName)
  if (!tile) throw bad(label, `the database has no tile table "${tileName}" to import into`, 'check `tilesync init` settings')
  const cols = columnIndexes(tile, csv.columns, label)
  const [xi, yi] = tileXYColumns(tile, ws.repo.config.xyColumns)
  const sql = base.snapshot.schema.find((e) => e.type === 'table' && e.name === tileName)?.sql ?? ''
  const defaults = columnDefaults(sql)
  const byXY = new Map<string, Row>()
  for await (const row of ws.reader.rows(tile)) {
    if (row.types[xi] === 'i' && row.types[yi] === 'i') byXY.set(`${BigInt(row.values[xi] as number | bigint)},${BigInt(row.values[yi] as number | bigint)}`, row)
  }
  const editor = new TableTreeEditor(tile, tile, ws.reader, ws.repo.store)
  const stats = {updated: 0, created: 0, unchanged: 0, notCreated: [] as XYImportResult['notCreated']}
  const blobOf = (e: XYEntry, f: XYLayerFile): BlobRef => {
    const ref = blobs.get(f.path)
    if (!ref) throw new TilesyncError('DB_CHANGED', `tile ${e.x},${e.y} changed in the database during the import`, {hint: 'run the import again; nothing was changed'})
    return ref
  }
  const asCell = (v: bigint): number | bigint => (Number.isSafeInteger(Number(v)) ? Number(v) : v)
  for (const e of csv.entries) {
    const existing = byXY.get(`${e.x},${e.y}`)
    if (existing) {
      const types = [...existing.types]
      const values = [...existing.values]
      let changed = false
      for (const f of e.files) {
        const i = cols.get(f.column)!
        if (types[i] === 'b' && (await md5.md5Of((values[i] as BlobRef).id, ws.repo.store)) === f.hash) continue
        types[i] = 'b'
        values[i] = blobOf(e, f)
        changed = true
      }
      if (!changed) {
        stats.unchanged++
        continue
      }
      await editor.put({types: types.join(''), values})
      stats.updated++
      continue
    }
    if (e.files.length === 0) continue
    const why = whyNotCreatable(tile, sql, [xi, yi], new Set(e.files.map((f) => f.column)))
    if (why) {
      stats.notCreated.push({x: String(e.x), y: String(e.y), line: e.line, reason: why})
      continue
    }
    const given = new Map(e.files.map((f) => [cols.get(f.column)!, f]))
    const cells: TypedCell[] = tile.columns.map((c, i) => {
      if (i === xi) return {type: 'i', value: asCell(e.x)}
      if (i === yi) return {type: 'i', value: asCell(e.y)}
      const f = given.get(i)
      if (f) return {type: 'b', value: blobOf(e, f)}
      return defaults.get(c.name) ?? {type: 'n', value: null}
    })
    await editor.put({types: cells.map((c) => c.type).join(''), values: cells.map((c) => c.value as Cell)})
    stats.created++
  }
  const tables = new Map(base.tables)
  const tableIds = new Map(base.tableIds)
  const built = await editor.finish()
  tables.set(tileName, built.table)
  tableIds.set(tileName, built.id)
  return {state: await importedState(ws, base, tables, tableIds, tileName), stats}
}

/**
 * The pipeline's own layout, through its folder import's code (src/dataset/import-pipeline.ts):
 * the dataset is presented as a folder whose unchanged images are this database's own bytes
 * (their MD5 equals the name's) and whose others were just downloaded and checked.
 */
async function importPipelineLayout(ws: Workspace, src: DatasetSource, csv: XYCsv, local: {images: Map<string, LocalImage>}, blobs: Map<string, BlobRef>, base: XYImportResult, force: boolean): Promise<XYImportResult> {
  const files = new Map<string, number>([[CSV_PATH, 0]])
  for (const p of [PIPELINE_CONFIG, PIPELINE_BOUNDS]) if (await src.exists(p)) files.set(p, 0)
  const listed = new Map<string, XYLayerFile>()
  for (const e of csv.entries) {
    for (const f of e.files) {
      files.set(f.path, 0)
      listed.set(f.path, f)
    }
  }
  const folder = {
    label: src.label,
    files,
    exists: async (p: string) => files.has(p),
    read: async (p: string, maxBytes: number): Promise<Buffer> => {
      const ref = blobs.get(p)
      if (ref) return ws.repo.store.get(ref.id)
      const f = listed.get(p)
      const mine = f ? local.images.get(keyOf(f)) : undefined
      if (mine) return ws.repo.store.get(mine.id)
      return src.read(p, maxBytes)
    },
  }
  const read = await readPipelineFiles(folder, ws.repo.store, await Md5Cache.open(ws.repo))
  let stats: Awaited<ReturnType<typeof pipelineTarget>>['stats'] | undefined
  const written = await writeTarget(ws, async (state) => {
    const built = await pipelineTarget(ws, state, read, src.label)
    stats = built.stats
    return built.state
  }, {force})
  const copied = await copyBesideDatabase(ws, read)
  return {
    ...base, updated: stats!.updated, created: stats!.added, unchanged: stats!.unchanged,
    rowsWritten: written.rowsWritten, savedAs: written.savedAs, generationConfig: stats!.generationConfig, copied,
  }
}
