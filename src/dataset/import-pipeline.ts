import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import pLimit from 'p-limit'

import {TilesyncError} from '../core/errors.js'
import {columnDefaults, columnFacts, withAffinity} from '../snapshot/column-defaults.js'
import type {TypedCell} from '../snapshot/layout-compare.js'
import {type BlobRef, type Cell, encodeSnapshot, type Row, type Snapshot, type TableTree} from '../snapshot/model.js'
import {TableTreeEditor} from '../snapshot/tree-editor.js'
import {importedState} from './imported-state.js'
import type {TreeState} from '../snapshot/tree-state.js'
import type {Workspace} from '../workspace/workspace.js'
import {tileXYColumns} from './build-dataset.js'
import {CSV_PATH, LIMITS, md5Prefix} from './layout.js'
import type {Md5Cache} from './md5-cache.js'
import {checkJsonFile, checkPipelineFiles, parsePipelineCsv, PIPELINE_BOUNDS, PIPELINE_CONFIG, PIPELINE_FOLDER, PIPELINE_LAYER, type PipelineTile} from './pipeline-layout.js'
import type {DirectorySource} from './source.js'

/** What an import of the pipeline's own export did. */
export interface PipelineImport {
  /** Tiles listed in generations.csv. */
  tiles: number
  /** Existing tiles whose generation image the import set, tiles it created, tiles already equal. */
  updated: number
  added: number
  unchanged: number
  /** generation_config.json stored in the metadata table (key generation_config), as the pipeline does. */
  generationConfig: boolean
  /** JSON files copied beside the database (generations/<run>/bounds.json ...), as the pipeline's import does. */
  copied: string[]
}

/** The verified files of a pipeline export, read before the database is opened for writing. */
export interface PipelineFiles {
  records: PipelineTile[]
  images: Map<string, BlobRef>
  config: string | null
  bounds: string | null
}

const bad = (label: string, why: string, hint = 'the dataset was damaged or tampered with; nothing was changed') => new TilesyncError('BAD_DATASET', `${label}: ${why}`, {hint})

/**
 * Checks every file of the folder (names, the CSV, the MD5 in each image's name) and stores
 * the images; nothing of the database is touched yet.
 */
export async function readPipelineFiles(src: Pick<DirectorySource, 'files' | 'label' | 'read' | 'exists'>, store: Workspace['repo']['store'], md5: Md5Cache): Promise<PipelineFiles> {
  checkPipelineFiles(src.files, src.label)
  const imagePaths = new Set([...src.files.keys()].filter((p) => p.startsWith(`${PIPELINE_FOLDER}/`)))
  const records = parsePipelineCsv(await src.read(CSV_PATH, LIMITS.textBytes), imagePaths, src.label)
  const readJson = async (p: string): Promise<string | null> => ((await src.exists(p)) ? checkJsonFile(await src.read(p, LIMITS.textBytes), p, src.label) : null)
  const config = await readJson(PIPELINE_CONFIG)
  const bounds = await readJson(PIPELINE_BOUNDS)
  const images = new Map<string, BlobRef>()
  const limit = pLimit(8)
  await Promise.all(records.map((r) => limit(async () => {
    const bytes = await src.read(r.path, LIMITS.fileBytes)
    const got = md5Prefix(bytes)
    if (got !== r.hash) throw bad(src.label, `${r.path} does not match the MD5 hash in its name (its bytes hash to ${got})`)
    const id = await store.put(bytes)
    md5.remember(id, got)
    images.set(r.path, {id, size: bytes.length})
  })))
  await md5.flush()
  return {records, images, config, bounds}
}

/**
 * The state the database has after the import: `base` with each listed tile's generation
 * set (a missing tile created with its coordinates, 0 in NOT NULL columns without a default,
 * the default elsewhere) and generation_config stored in the metadata table. Nothing else
 * changes: the pipeline's export lists only generated tiles, so an absent tile is not a
 * deleted one.
 */
export async function pipelineTarget(ws: Workspace, base: TreeState, files: PipelineFiles, label: string): Promise<{state: TreeState; stats: Omit<PipelineImport, 'copied'>}> {
  const tileName = base.snapshot.tileTable ?? ws.repo.config.tileTable
  const tile = base.tables.get(tileName)
  if (!tile) throw bad(label, `the database has no tile table "${tileName}" to import into`, 'check `tilesync init` settings')
  const gi = tile.columns.findIndex((c) => c.name === PIPELINE_LAYER)
  if (gi < 0) throw bad(label, `"${tileName}" has no ${PIPELINE_LAYER} column for the pipeline's ${PIPELINE_FOLDER}/ images`, 'import into the database the pipeline generates')
  const [xi, yi] = tileXYColumns(tile, ws.repo.config.xyColumns)
  const sql = base.snapshot.schema.find((e) => e.type === 'table' && e.name === tileName)?.sql ?? ''
  const defaults = columnDefaults(sql)
  const facts = columnFacts(sql)
  const keyIsXY = tile.keyKind === 'pk' && tile.key.every((k) => k === xi || k === yi)

  const byXY = new Map<string, Row>()
  for await (const row of ws.reader.rows(tile)) {
    if (row.types[xi] === 'i' && row.types[yi] === 'i') byXY.set(`${BigInt(row.values[xi] as number | bigint)},${BigInt(row.values[yi] as number | bigint)}`, row)
  }
  const editor = new TableTreeEditor(tile, tile, ws.reader, ws.repo.store)
  const stats = {tiles: files.records.length, updated: 0, added: 0, unchanged: 0, generationConfig: false}
  const asCell = (v: bigint): number | bigint => (Number.isSafeInteger(Number(v)) ? Number(v) : v)
  for (const rec of files.records) {
    const ref = files.images.get(rec.path)!
    const existing = byXY.get(`${rec.x},${rec.y}`)
    if (existing) {
      if (existing.types[gi] === 'b' && (existing.values[gi] as BlobRef).id === ref.id) {
        stats.unchanged++
        continue
      }
      const types = [...existing.types]
      const values = [...existing.values]
      types[gi] = 'b'
      values[gi] = ref
      await editor.put({types: types.join(''), values})
      stats.updated++
      continue
    }
    if (!keyIsXY) throw bad(label, `line ${rec.line}: tile ${rec.x},${rec.y} is new, and "${tileName}" is keyed by more than x, y`, 'add the tile with your pipeline first; nothing was changed')
    const cells: TypedCell[] = tile.columns.map((c, i) => {
      if (i === xi) return {type: 'i', value: asCell(rec.x)}
      if (i === yi) return {type: 'i', value: asCell(rec.y)}
      if (i === gi) return {type: 'b', value: ref}
      const dflt = defaults.get(c.name)
      if (dflt) return dflt
      const fact = facts.get(c.name)
      if (!fact?.notNull) return {type: 'n', value: null}
      // As the pipeline's import does: 0 for the NOT NULL lat, lng and tile columns.
      const zero = withAffinity(fact.declType, 0)
      if (zero.type !== 'i' && zero.type !== 'r') {
        throw bad(label, `line ${rec.line}: tile ${rec.x},${rec.y} is new but "${tileName}" requires ${c.name} (NOT NULL ${fact.declType || 'untyped'}), which the export cannot supply`, 'add the tile with your pipeline first; nothing was changed')
      }
      return zero
    })
    await editor.put({types: cells.map((c) => c.type).join(''), values: cells.map((c) => c.value as Cell)})
    stats.added++
  }
  const tables = new Map(base.tables)
  const tableIds = new Map(base.tableIds)
  const built = await editor.finish()
  tables.set(tileName, built.table)
  tableIds.set(tileName, built.id)

  const meta = base.tables.get('metadata')
  if (files.config !== null && meta) {
    const updated = await storeConfig(ws, meta, files.config)
    if (updated) {
      tables.set('metadata', updated.table)
      tableIds.set('metadata', updated.id)
      stats.generationConfig = true
    }
  }
  return {state: await importedState(ws, base, tables, tableIds, tileName), stats}
}

/** metadata (key TEXT PRIMARY KEY, value TEXT): sets generation_config, unless it already holds that. */
async function storeConfig(ws: Workspace, meta: TableTree, text: string): Promise<{id: string; table: TableTree} | null> {
  const ki = meta.columns.findIndex((c) => c.name === 'key')
  const vi = meta.columns.findIndex((c) => c.name === 'value')
  if (ki < 0 || vi < 0 || meta.keyKind !== 'pk' || meta.key.length !== 1 || meta.key[0] !== ki) return null
  for await (const row of ws.reader.rows(meta)) {
    if (row.values[ki] === 'generation_config' && row.types[vi] === 't' && row.values[vi] === text) return null
  }
  const types = meta.columns.map(() => 'n')
  const values: Cell[] = meta.columns.map(() => null)
  types[ki] = 't'
  values[ki] = 'generation_config'
  types[vi] = 't'
  values[vi] = text
  const editor = new TableTreeEditor(meta, meta, ws.reader, ws.repo.store)
  await editor.put({types: types.join(''), values})
  return editor.finish()
}

/** bounds.json and generation_config.json go beside the database, as the pipeline keeps them (written only when they differ). */
export async function copyBesideDatabase(ws: Workspace, files: PipelineFiles): Promise<string[]> {
  const dir = path.dirname(ws.repo.databasePath)
  const copied: string[] = []
  for (const [name, text] of [[PIPELINE_BOUNDS, files.bounds], [PIPELINE_CONFIG, files.config]] as const) {
    if (text === null) continue
    const target = path.join(dir, name)
    const current = await fs.readFile(target, 'utf8').catch(() => null)
    if (current === text) continue
    const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`
    await fs.writeFile(tmp, text, {flag: 'wx'})
    await fs.rename(tmp, target)
    copied.push(path.relative(ws.repo.root, target).split(path.sep).join('/'))
  }
  return copied
}
