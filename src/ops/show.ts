import * as fs from 'node:fs/promises'

import {TilesyncError} from '../core/errors.js'
import type {BlobRef} from '../snapshot/model.js'
import {writeFileAtomic} from '../util/write-file-atomic.js'
import * as path from 'node:path'
import {type ChangeSet, computeChangeSet} from '../snapshot/change-set.js'
import {log, type LogEntry} from './log.js'
import {checkLayer, layerNames, listTileImages, tileTableOf} from './tile-images.js'
import {formatCoord} from '../dataset/layout.js'
import type {BBox} from '../snapshot/tree-reader.js'
import type {Workspace} from '../workspace/workspace.js'

export interface ShowCommitResult {
  commit: LogEntry
  tree: string
  changes: ChangeSet
}

/** Commit details with what it changed against its first parent. */
export async function showCommit(ws: Workspace, revision: string): Promise<ShowCommitResult> {
  const id = await ws.resolve(revision)
  const [entry] = await log(ws, {revision: id, limit: 1})
  const commit = await ws.reader.commit(id)
  const parent = await ws.stateOf(commit.parents[0] ?? null)
  const changes = await computeChangeSet(parent, await ws.stateOf(id), ws.reader)
  return {commit: entry, tree: commit.tree, changes}
}

export interface ShowTileResult {
  revision: string
  x: number
  y: number
  layer: string
  object: BlobRef | null
  output?: string
  columns: Record<string, unknown>
}

/** One tile at a revision; with `output`, writes the layer's image there. */
export async function showTile(ws: Workspace, options: {revision: string; x: number; y: number; layer?: string; output?: string}): Promise<ShowTileResult> {
  const id = await ws.resolve(options.revision)
  const {snapshot, tables} = await ws.reader.tablesOf(id)
  const table = snapshot.tileTable ? tables.get(snapshot.tileTable) : undefined
  if (!table || table.partition.kind !== 'spatial') {
    throw new TilesyncError('TILE_MISSING', 'this revision has no tile table with x,y coordinates', {hint: 'check `tilesync init` settings'})
  }
  const {x: xi, y: yi} = table.partition
  let found
  for await (const row of ws.reader.rows(table, [options.x, options.y, options.x, options.y])) {
    if (row.types[xi] === 'i' && row.types[yi] === 'i' && Number(row.values[xi]) === options.x && Number(row.values[yi]) === options.y) {
      found = row
      break
    }
  }
  if (!found) {
    throw new TilesyncError('TILE_MISSING', `no tile ${options.x},${options.y} at ${options.revision}`, {hint: '`tilesync diff` and `tilesync log` show which tiles exist'})
  }
  const layerNames = table.layers.map((i) => table.columns[i].name)
  const layer = options.layer ?? layerNames.at(-1) ?? ''
  const li = table.columns.findIndex((c) => c.name === layer)
  if (li < 0 || !table.layers.includes(li)) {
    throw new TilesyncError('BAD_ARGUMENT', `no image layer "${layer}" (layers: ${layerNames.join(', ')})`, {hint: 'pass --layer with one of those'})
  }
  const columns: Record<string, unknown> = {}
  table.columns.forEach((c, i) => {
    const v = found.values[i]
    columns[c.name] = found.types[i] === 'b' ? {object: (v as BlobRef).id, size: (v as BlobRef).size} : typeof v === 'bigint' ? v.toString() : v
  })
  const object = found.types[li] === 'b' ? (found.values[li] as BlobRef) : null
  const result: ShowTileResult = {revision: id, x: options.x, y: options.y, layer, object, columns}
  if (options.output) {
    if (!object) throw new TilesyncError('TILE_MISSING', `tile ${options.x},${options.y} has no ${layer} image at ${options.revision} (NULL)`, {hint: 'try another --layer or revision'})
    const bytes = await ws.repo.store.get(object.id)
    const out = path.resolve(options.output)
    await fs.mkdir(path.dirname(out), {recursive: true})
    await writeFileAtomic(path.dirname(out), out, bytes, false)
    result.output = out
  }
  return result
}

export interface ShowRegionResult {
  revision: string
  bbox: BBox
  layer: string
  dir: string
  /** Images written (tiles with no image in the layer are skipped), and their bytes. */
  files: number
  bytes: number
}

/**
 * `show REV --bbox x0,y0,x1,y1 -o DIR`: the region's images of one layer as PNG files,
 * DIR/<x>_<y>.png with coordinates written as the dataset names them (0012, -012). Each file
 * is written whole (temp file, rename); a file already holding those bytes is left alone.
 */
export async function showRegion(ws: Workspace, options: {revision: string; bbox: BBox; layer?: string; output: string}): Promise<ShowRegionResult> {
  const id = await ws.resolve(options.revision)
  const state = await ws.stateOf(id)
  const table = tileTableOf(state)
  if (!table) throw new TilesyncError('TILE_MISSING', 'this revision has no tile table with x,y coordinates', {hint: 'check `tilesync init` settings'})
  const layer = options.layer ?? layerNames(table).at(-1) ?? ''
  checkLayer(table, layer)
  const dir = path.resolve(options.output)
  await fs.mkdir(dir, {recursive: true})
  const result: ShowRegionResult = {revision: id, bbox: options.bbox, layer, dir, files: 0, bytes: 0}
  for (const image of await listTileImages(state, ws.reader, [layer], options.bbox)) {
    const bytes = await ws.repo.store.get(image.id)
    const out = path.join(dir, `${formatCoord(image.x)}_${formatCoord(image.y)}.png`)
    const current = await fs.readFile(out).catch(() => null)
    if (!current || !current.equals(bytes)) await writeFileAtomic(dir, out, bytes, false)
    result.files++
    result.bytes += bytes.length
  }
  return result
}
