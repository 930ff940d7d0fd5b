import pLimit from 'p-limit'

import {TilesyncError} from '../core/errors.js'
import {hashBytes} from '../core/hash.js'
import type {TreeState} from '../snapshot/tree-state.js'
import {sameOxenHash} from './xxh3.js'
import {type BlobRef, type Cell, encodeCommit, encodeSnapshot, type Row, type Snapshot, type TableTree} from '../snapshot/model.js'
import {rowKey} from '../snapshot/rows.js'
import {TableTreeEditor} from '../snapshot/tree-editor.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import type {ObjectStore} from '../store/object-store.js'
import {tileXYColumns} from './build-dataset.js'
import {type CsvTile, parseGenerationsCsv} from './csv.js'
import {blobPath, CSV_PATH, imageName, type LayerFolder, layerFolders, LIMITS, MANIFEST_PATH, md5Prefix, parseImageName, tableRowsDir} from './layout.js'
import {headerOfManifest, type Manifest, type ManifestCommit, type ManifestTable, parseManifest} from './manifest.js'
import type {Md5Cache} from './md5-cache.js'
import {type DecodedRow, decodeRowLine} from './rows-file.js'
import {checkSchema} from './schema-check.js'
import {columnDefaults} from '../snapshot/column-defaults.js'
import type {DatasetSource} from './source.js'

export interface RestoreContext {
  reader: TreeReader
  /** Where rebuilt trees and verified blobs go. */
  store: ObjectStore
  md5: Md5Cache
  /**
   * The state other columns are carried from when generations.csv was changed outside
   * tilesync and the dataset's own tilesync/ files cannot supply them.
   */
  base: TreeState | null
  baseXY?: [string, string]
  /** Parsed rows files by BLAKE3, shared by the commits of one fetch. */
  partCache?: Map<string, DecodedRow[]>
  /** Parallel file reads (default 8). */
  concurrency?: number
  /**
   * A dataset without tilesync/ is the user's own format, and its generations.csv may list
   * only some tiles (the pipeline's export leaves out tiles with no image): it is applied
   * additively, every tile it lacks kept and every empty image cell left as it was. true
   * makes its CSV the whole truth instead (`import --delete`). A dataset with tilesync/ is
   * always the whole truth: its manifest records every row.
   */
  deleteMissing?: boolean
}

export interface RestoreResult {
  /** exact: rebuilt from tilesync/ and verified; edited: tiles from generations.csv + images. */
  mode: 'exact' | 'edited'
  state: TreeState
  manifest: Manifest | null
  /** In exact mode, the commit the dataset records (its id verified against its fields). */
  commit: ManifestCommit | null
  tiles: number
  /** True when the dataset was applied additively (no tilesync/, no deleteMissing): nothing was deleted. */
  additive: boolean
}

const bad = (label: string, why: string) => new TilesyncError('BAD_DATASET', `${label}: ${why}`, {hint: 'the dataset was damaged or tampered with; nothing was changed'})

/**
 * Rebuilds a tree state from a dataset. When generations.csv is the one the manifest records,
 * every table is rebuilt from tilesync/rows and must hash to the recorded snapshot and commit
 * ("exact"). Otherwise the CSV was changed with other tools: tiles and their images come from
 * it, every other column and table from tilesync/rows (or, without them, from `base`)
 * ("edited"). Every file read is checked (size, MD5 in its name, BLAKE3) before it is stored.
 * Returns null for a source with neither generations.csv nor a manifest (not a tile dataset).
 */
export async function restoreDataset(src: DatasetSource, ctx: RestoreContext): Promise<RestoreResult | null> {
  const label = src.label
  const hasManifest = await src.exists(MANIFEST_PATH)
  const hasCsv = await src.exists(CSV_PATH)
  if (!hasManifest && !hasCsv) return null
  if (!hasCsv) throw bad(label, `${CSV_PATH} is missing`)
  const manifest = hasManifest ? parseManifest(await src.read(MANIFEST_PATH, LIMITS.manifestBytes)) : null

  let csvBytes: Buffer | null = null
  let csvExact = false
  if (manifest) {
    const rec = manifest.files[CSV_PATH]
    if (rec && src.quickHash && !src.verifyAll) {
      const h = await src.quickHash(CSV_PATH)
      csvExact = h !== null && sameOxenHash(h, rec.xxh3)
    } else if (rec) {
      csvBytes = await src.read(CSV_PATH, LIMITS.textBytes)
      csvExact = csvBytes.length === rec.size && hashBytes(csvBytes) === rec.b3
    }
  }
  if (manifest && csvExact) {
    checkSchema(manifest.schema, manifest.tables, `${label} ${MANIFEST_PATH}`)
    const sidecar = await readSidecar(src, manifest, ctx)
    // The CSV is read even in exact mode when reading is cheap, so hostile paths are refused.
    if (csvBytes) parseGenerationsCsv(csvBytes, manifest.tileTable.layers, label)
    return exact(src, ctx, manifest, sidecar)
  }
  csvBytes ??= await src.read(CSV_PATH, LIMITS.textBytes)
  return edited(src, ctx, manifest, csvBytes)
}

/** Reads and verifies every rows file the manifest lists; parsed rows per table. */
async function readSidecar(src: DatasetSource, manifest: Manifest, ctx: RestoreContext): Promise<Map<string, DecodedRow[]>> {
  const out = new Map<string, DecodedRow[]>()
  const limit = pLimit(ctx.concurrency ?? 8)
  for (const t of manifest.tables) {
    const dir = `${tableRowsDir(t.name)}/`
    const parts = await Promise.all(t.parts.map((part) => limit(async () => {
      if (!part.path.startsWith(dir)) throw bad(src.label, `${part.path} is not a rows file of table "${t.name}"`)
      const rec = manifest.files[part.path]
      const cached = ctx.partCache?.get(rec.b3)
      if (cached) return cached
      const bytes = await src.read(part.path, LIMITS.textBytes)
      if (bytes.length !== rec.size || hashBytes(bytes) !== rec.b3) {
        throw bad(src.label, `${part.path} does not match the BLAKE3 hash recorded in ${MANIFEST_PATH}`)
      }
      const lines = bytes.toString('utf8').split('\n')
      if (lines[lines.length - 1] === '') lines.pop()
      const rows = lines.map((line, i) => decodeRowLine(line, t.columns.length, `${src.label}: ${part.path} line ${i + 1}`))
      if (rows.length !== part.rows) throw bad(src.label, `${part.path} has ${rows.length} rows, the manifest says ${part.rows}`)
      ctx.partCache?.set(rec.b3, rows)
      return rows
    })))
    const rows = parts.flat()
    if (rows.length !== t.rowCount) throw bad(src.label, `table "${t.name}" has ${rows.length} rows, the manifest says ${t.rowCount}`)
    out.set(t.name, rows)
  }
  return out
}

/** Which layer (if any) each column of the tile table is, and where x and y are. */
function tileShape(src: DatasetSource, t: Pick<TableTree, 'name' | 'columns' | 'layers'>, layers: LayerFolder[], xName: string, yName: string) {
  const names = t.columns.map((c) => c.name)
  if (t.layers.length !== layers.length || t.layers.some((col, i) => names[col] !== layers[i].column)) {
    throw bad(src.label, `the image columns of "${t.name}" do not match the dataset's folders`)
  }
  const xi = names.indexOf(xName)
  const yi = names.indexOf(yName)
  if (xi < 0 || yi < 0) throw bad(src.label, `"${t.name}" has no columns ${xName}, ${yName}`)
  return {layerAt: new Map(t.layers.map((col, i) => [col, layers[i]])), xi, yi}
}

interface BlobNeed {
  ref: BlobRef
  path: string
  md5?: string
}

/** Fetches, checks and stores the blobs that are not in the store yet (all of them when verifyAll). */
async function fetchBlobs(src: DatasetSource, ctx: RestoreContext, needs: Map<string, BlobNeed>): Promise<void> {
  const limit = pLimit(ctx.concurrency ?? 8)
  await Promise.all([...needs.values()].map((need) => limit(async () => {
    if (!src.verifyAll && await ctx.store.has(need.ref.id)) return
    const bytes = await src.read(need.path, LIMITS.fileBytes)
    if (bytes.length !== need.ref.size) throw bad(src.label, `${need.path} is ${bytes.length} bytes, the dataset records ${need.ref.size}`)
    const md5 = md5Prefix(bytes)
    if (need.md5 !== undefined && md5 !== need.md5) throw bad(src.label, `${need.path} does not match the MD5 hash in its name (its bytes hash to ${md5})`)
    if (hashBytes(bytes) !== need.ref.id) throw bad(src.label, `${need.path} does not match the BLAKE3 id recorded for it`)
    await ctx.store.put(bytes, need.ref.id)
    ctx.md5.remember(need.ref.id, md5)
  })))
}

async function exact(src: DatasetSource, ctx: RestoreContext, manifest: Manifest, sidecar: Map<string, DecodedRow[]>): Promise<RestoreResult> {
  const label = src.label
  const needs = new Map<string, BlobNeed>()
  for (const t of manifest.tables) {
    const isTile = t.name === manifest.tileTable.name
    const shape = isTile ? tileShape(src, t, manifest.tileTable.layers, manifest.tileTable.x, manifest.tileTable.y) : null
    for (const {row, paths} of sidecar.get(t.name)!) {
      for (let i = 0; i < row.types.length; i++) {
        if (row.types[i] !== 'b') continue
        const ref = row.values[i] as BlobRef
        const layer = shape?.layerAt.get(i)
        const p = paths.get(i)
        if (!layer) {
          if (p !== undefined && p !== blobPath(ref.id)) throw bad(label, `table "${t.name}" names ${p} for a blob that belongs at ${blobPath(ref.id)}`)
          needs.set(`${ref.id} ${blobPath(ref.id)}`, {ref, path: blobPath(ref.id)})
          continue
        }
        if (p === undefined) throw bad(label, `a ${layer.column} image of "${t.name}" names no file`)
        const slash = p.indexOf('/')
        const parsed = parseImageName(p.slice(slash + 1))
        const x = row.types[shape!.xi] === 'i' ? BigInt(row.values[shape!.xi] as number | bigint) : null
        const y = row.types[shape!.yi] === 'i' ? BigInt(row.values[shape!.yi] as number | bigint) : null
        if (p.slice(0, slash) !== layer.folder || !parsed || parsed.x !== x || parsed.y !== y) {
          throw bad(label, `${p} is not where the ${layer.column} image of tile ${x},${y} belongs`)
        }
        needs.set(`${ref.id} ${p}`, {ref, path: p, md5: parsed.hash})
      }
    }
  }
  await fetchBlobs(src, ctx, needs)

  const tables = new Map<string, TableTree>()
  const tableIds = new Map<string, string>()
  for (const t of manifest.tables) {
    const {id, table} = await buildTable(label, t, sidecar.get(t.name)!.map((d) => d.row), ctx)
    if (id !== t.id) throw bad(label, `the rows of table "${t.name}" do not rebuild the table recorded in the manifest`)
    tables.set(t.name, table)
    tableIds.set(t.name, id)
  }
  const header = headerOfManifest(manifest.header)
  const snapshot: Snapshot = {schema: manifest.schema, tables: manifest.tables.map((t) => ({name: t.name, id: tableIds.get(t.name)!})), tileTable: manifest.tileTable.name, ...(header ? {header} : {})}
  const snapshotId = await ctx.store.put(encodeSnapshot(snapshot))
  if (snapshotId !== manifest.commit.tree) throw bad(label, `the rebuilt snapshot ${snapshotId.slice(0, 12)} differs from the recorded ${manifest.commit.tree.slice(0, 12)}`)
  const {id, ...fields} = manifest.commit
  if (hashBytes(encodeCommit(fields)) !== id) throw bad(label, `the commit fields in ${MANIFEST_PATH} do not hash to commit ${id.slice(0, 12)}`)
  await ctx.md5.flush()
  return {mode: 'exact', state: {snapshotId, snapshot, tables, tableIds}, manifest, commit: manifest.commit, tiles: tables.get(manifest.tileTable.name)!.rowCount, additive: false}
}

async function buildTable(label: string, t: Pick<ManifestTable, 'name' | 'columns' | 'keyKind' | 'key' | 'layers' | 'partition'>, rows: Iterable<Row>, ctx: RestoreContext): Promise<{id: string; table: TableTree}> {
  const editor = new TableTreeEditor({name: t.name, columns: t.columns, keyKind: t.keyKind, key: t.key, layers: t.layers, partition: t.partition}, null, ctx.reader, ctx.store)
  const keys = new Set<string>()
  for (const row of rows) {
    const k = rowKey(row, t.key)
    if (keys.has(k)) throw bad(label, `table "${t.name}" has two rows with the same key`)
    keys.add(k)
    await editor.put(row)
  }
  return editor.finish()
}

interface Carried {
  schema: TreeState['snapshot']['schema']
  header?: TreeState['snapshot']['header']
  tileName: string
  tile: Pick<ManifestTable, 'name' | 'columns' | 'keyKind' | 'key' | 'layers' | 'partition'>
  tileRows: DecodedRow[]
  layers: LayerFolder[]
  xName: string
  yName: string
  /** Other tables: rebuilt from rows, or taken as they are from the base state. */
  others: Array<{t: Pick<ManifestTable, 'name' | 'columns' | 'keyKind' | 'key' | 'layers' | 'partition'>; rows: Row[]} | {name: string; id: string; table: TableTree}>
}

/** What an edited dataset carries over: tilesync/rows when intact, else the base state. */
async function carried(src: DatasetSource, ctx: RestoreContext, manifest: Manifest | null): Promise<Carried> {
  if (manifest) {
    const sidecar = await readSidecar(src, manifest, ctx)
    const tile = manifest.tables.find((t) => t.name === manifest.tileTable.name)!
    return {
      schema: manifest.schema, header: headerOfManifest(manifest.header), tileName: tile.name, tile, tileRows: sidecar.get(tile.name)!, layers: manifest.tileTable.layers,
      xName: manifest.tileTable.x, yName: manifest.tileTable.y,
      others: manifest.tables.filter((t) => t !== tile).map((t) => ({t, rows: sidecar.get(t.name)!.map((d) => d.row)})),
    }
  }
  const base = ctx.base
  const tileName = base?.snapshot.tileTable
  const tile = tileName ? base!.tables.get(tileName) : undefined
  if (!base || !tileName || !tile) {
    throw bad(src.label, `there is no ${MANIFEST_PATH} and no earlier tilesync state to take the tiles' other columns from`)
  }
  const layers = layerFolders(tile.layers.map((i) => tile.columns[i].name))
  const [xi, yi] = tileXYColumns(tile, ctx.baseXY)
  const tileRows: DecodedRow[] = []
  for await (const row of ctx.reader.rows(tile)) {
    const paths = new Map<number, string>()
    if (row.types[xi] === 'i' && row.types[yi] === 'i') {
      for (let j = 0; j < tile.layers.length; j++) {
        const col = tile.layers[j]
        if (row.types[col] !== 'b') continue
        const md5 = await ctx.md5.md5Of((row.values[col] as BlobRef).id, ctx.store)
        paths.set(col, `${layers[j].folder}/${imageName(row.values[xi] as number | bigint, row.values[yi] as number | bigint, md5)}`)
      }
    }
    tileRows.push({row, paths})
  }
  return {
    schema: base.snapshot.schema, header: base.snapshot.header, tileName, tile, tileRows, layers, xName: tile.columns[xi].name, yName: tile.columns[yi].name,
    others: [...base.tables].filter(([name]) => name !== tileName).map(([name, table]) => ({name, id: base.tableIds.get(name)!, table})),
  }
}

async function edited(src: DatasetSource, ctx: RestoreContext, manifest: Manifest | null, csvBytes: Buffer): Promise<RestoreResult> {
  const label = src.label
  const c = await carried(src, ctx, manifest)
  const tablesForCheck = [c.tile, ...c.others.map((o) => ('t' in o ? o.t : o.table))]
  const notNull = checkSchema(c.schema, tablesForCheck, `${label} schema`)
  const records: CsvTile[] = parseGenerationsCsv(csvBytes, c.layers, label)
  const {xi, yi} = tileShape(src, c.tile, c.layers, c.xName, c.yName)

  const byXY = new Map<string, Row | null>()
  const known = new Map<string, BlobRef>()
  for (const {row, paths} of c.tileRows) {
    for (const [col, p] of paths) if (row.types[col] === 'b') known.set(p, row.values[col] as BlobRef)
    if (row.types[xi] !== 'i' || row.types[yi] !== 'i') continue
    const k = `${BigInt(row.values[xi] as number | bigint)},${BigInt(row.values[yi] as number | bigint)}`
    byXY.set(k, byXY.has(k) ? null : row)
  }

  // Images the dataset has that tilesync does not know yet: read and checked against their names.
  const fresh = new Map<string, BlobNeed>()
  for (const rec of records) for (const p of rec.paths) if (p && (src.verifyAll || !known.has(p))) fresh.set(p, {ref: {id: '', size: 0}, path: p})
  const limit = pLimit(ctx.concurrency ?? 8)
  await Promise.all([...fresh.values()].map((need) => limit(async () => {
    const bytes = await src.read(need.path, LIMITS.fileBytes)
    const md5 = md5Prefix(bytes)
    const expected = parseImageName(need.path.slice(need.path.indexOf('/') + 1))!.hash
    if (md5 !== expected) throw bad(label, `${need.path} does not match the MD5 hash in its name (its bytes hash to ${md5})`)
    const id = await ctx.store.put(bytes)
    ctx.md5.remember(id, md5)
    known.set(need.path, {id, size: bytes.length})
  })))

  const keyIsXY = c.tile.key.every((k) => k === xi || k === yi)
  const required = notNull.get(c.tileName) ?? new Set<string>()
  const additive = !manifest && !ctx.deleteMissing
  const defaults = columnDefaults(c.schema.find((e) => e.type === 'table' && e.name === c.tileName)?.sql ?? '')
  const rows: Row[] = []
  const listed = new Set<string>()
  for (const rec of records) {
    const k = `${rec.x},${rec.y}`
    listed.add(k)
    const base = byXY.get(k)
    if (base === null) throw bad(label, `tile ${k} matches several rows of "${c.tileName}"; edit those tiles with tilesync`)
    let types: string[]
    let values: Cell[]
    if (base) {
      types = [...base.types]
      values = [...base.values]
    } else {
      if (!keyIsXY) {
        throw new TilesyncError('BAD_DATASET', `${label}: line ${rec.line}: tile ${k} is new, and "${c.tileName}" is keyed by more than x, y`, {hint: 'add the tile to the database first (with your pipeline), then import again; nothing was changed'})
      }
      // Declared defaults first, as an INSERT naming only x, y and the images would get them.
      types = c.tile.columns.map((col) => defaults.get(col.name)?.type ?? 'n')
      values = c.tile.columns.map((col) => (defaults.get(col.name)?.value as Cell | undefined) ?? null)
      const asCell = (v: bigint): number | bigint => (Number.isSafeInteger(Number(v)) ? Number(v) : v)
      types[xi] = 'i'
      values[xi] = asCell(rec.x)
      types[yi] = 'i'
      values[yi] = asCell(rec.y)
    }
    c.tile.layers.forEach((col, j) => {
      const p = rec.paths[j]
      if (p) {
        types[col] = 'b'
        values[col] = known.get(p)!
      } else if (types[col] === 'b' && !additive) {
        // Additively an empty cell carries nothing: the image stays.
        types[col] = 'n'
        values[col] = null
      }
    })
    if (!base) {
      const missing = c.tile.columns.filter((col, i) => required.has(col.name) && types[i] === 'n').map((col) => col.name)
      if (missing.length) {
        throw new TilesyncError('DB_CONSTRAINT', `${label}: line ${rec.line}: tile ${k} is new, and "${c.tileName}" requires ${missing.join(', ')} (NOT NULL), which generations.csv cannot supply`, {
          hint: `add the tile to the database first (with your pipeline), then import again; nothing was changed`,
          data: {line: rec.line, tile: k, columns: missing},
        })
      }
    }
    rows.push({types: types.join(''), values})
  }
  // Tiles the CSV does not list: kept as they are, unless its list is the whole truth.
  if (additive) {
    for (const {row} of c.tileRows) {
      const listedHere = row.types[xi] === 'i' && row.types[yi] === 'i' && listed.has(`${BigInt(row.values[xi] as number | bigint)},${BigInt(row.values[yi] as number | bigint)}`)
      if (!listedHere) rows.push(row)
    }
  }

  const tables = new Map<string, TableTree>()
  const tableIds = new Map<string, string>()
  const tileBuilt = await buildTable(label, c.tile, rows, ctx)
  tables.set(c.tileName, tileBuilt.table)
  tableIds.set(c.tileName, tileBuilt.id)
  for (const o of c.others) {
    if ('t' in o) {
      const built = await buildTable(label, o.t, o.rows, ctx)
      tables.set(o.t.name, built.table)
      tableIds.set(o.t.name, built.id)
    } else {
      tables.set(o.name, o.table)
      tableIds.set(o.name, o.id)
    }
  }
  const snapshot: Snapshot = {
    schema: c.schema,
    tables: [...tableIds].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([name, id]) => ({name, id})),
    tileTable: c.tileName,
    ...(c.header ? {header: c.header} : {}),
  }
  const snapshotId = await ctx.store.put(encodeSnapshot(snapshot))
  await ctx.md5.flush()
  return {mode: 'edited', state: {snapshotId, snapshot, tables, tableIds}, manifest, commit: null, tiles: records.length, additive}
}
