import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import type {BBox} from '../snapshot/tree-reader.js'
import type {Workspace} from '../workspace/workspace.js'
import {buildDataset} from './build-dataset.js'
import {BLOBS_DIR, CSV_PATH, MANIFEST_PATH, ROWS_DIR} from './layout.js'
import {Md5Cache} from './md5-cache.js'
import {DirectorySource} from './source.js'

export interface ExportOptions {
  dir: string
  /** Default HEAD. */
  revision?: string
  /** Remove image files of tiles that no longer exist (default: keep them, the dataset only grows). */
  prune?: boolean
  /** Only the tiles inside x0,y0,x1,y1: generations.csv and their images, no tilesync/ (see BuildOptions.bbox). */
  bbox?: BBox
}

export interface ExportResult {
  dir: string
  commit: string
  tiles: number
  /** Files written, files already there with the same content, files removed. */
  written: number
  skipped: number
  removed: number
  bytes: number
}

/**
 * Writes a commit as the oxen dataset layout into a local folder (the offline twin of
 * `push` to an oxen remote). An existing dataset folder is updated in place: only files that
 * differ are written (each to a temp file renamed into place), an image whose name (and so its
 * MD5) is already there is not written again, and nothing is removed unless `prune`, except
 * stale tilesync/rows files, which always follow the commit.
 */
export async function exportDataset(ws: Workspace, options: ExportOptions): Promise<ExportResult> {
  const root = path.resolve(options.dir)
  const commit = await ws.resolve(options.revision ?? 'HEAD')
  let existing = new Map<string, number>()
  if (existsSync(root)) {
    const src = await DirectorySource.open(root)
    existing = src.files
    const entries = (await fs.readdir(root)).filter((e) => !e.startsWith('.'))
    if (entries.length > 0 && !existing.has(CSV_PATH) && !existing.has(MANIFEST_PATH)) {
      throw new TilesyncError('DESTINATION_EXISTS', `${options.dir} is not empty and holds no dataset`, {hint: 'export into a new folder or one an earlier export wrote'})
    }
    // A region's CSV over a whole export would leave a manifest that no longer matches it.
    if (options.bbox && existing.has(MANIFEST_PATH)) {
      throw new TilesyncError('DESTINATION_EXISTS', `${options.dir} holds a whole export (tilesync/); a --bbox export would leave it inconsistent`, {hint: 'export the region into a new folder'})
    }
  }
  const md5 = await Md5Cache.open(ws.repo)
  const plan = await buildDataset(ws.reader, commit, {store: ws.repo.store, md5, config: ws.repo.config, title: path.basename(root), bbox: options.bbox})
  await fs.mkdir(root, {recursive: true})
  const result: ExportResult = {dir: root, commit, tiles: plan.tiles, written: 0, skipped: 0, removed: 0, bytes: 0}
  const wanted = new Set<string>()

  for (const t of plan.texts) {
    wanted.add(t.path)
    const target = path.join(root, t.path)
    if (existing.get(t.path) === t.bytes.length && (await fs.readFile(target)).equals(t.bytes)) {
      result.skipped++
      continue
    }
    await writeAtomic(target, t.bytes)
    result.written++
    result.bytes += t.bytes.length
  }
  for (const [p, ref] of plan.blobs) {
    wanted.add(p)
    // The name carries the content's hash (MD5 in image names, BLAKE3 under tilesync/blobs).
    if (existing.get(p) === ref.size) {
      result.skipped++
      continue
    }
    await writeAtomic(path.join(root, p), await ws.repo.store.get(ref.id))
    result.written++
    result.bytes += ref.size
  }

  const folders = plan.layers.map((l) => `${l.folder}/`)
  for (const p of existing.keys()) {
    if (wanted.has(p)) continue
    const stale = p.startsWith(`${ROWS_DIR}/`) || (options.prune && (p.startsWith(`${BLOBS_DIR}/`) || folders.some((f) => p.startsWith(f))))
    if (!stale) continue
    await fs.rm(path.join(root, p), {force: true})
    result.removed++
  }
  await removeEmptyDirs(path.join(root, ROWS_DIR))
  return result
}

async function writeAtomic(target: string, bytes: Buffer): Promise<void> {
  await fs.mkdir(path.dirname(target), {recursive: true})
  const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await fs.writeFile(tmp, bytes, {flag: 'wx'})
    await fs.rename(tmp, target)
  } catch (err) {
    await fs.rm(tmp, {force: true}).catch(() => {})
    throw err
  }
}

async function removeEmptyDirs(dir: string): Promise<void> {
  let entries
  try {
    entries = await fs.readdir(dir, {withFileTypes: true})
  } catch {
    return
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue
    const child = path.join(dir, e.name)
    if ((await fs.readdir(child)).length === 0) await fs.rmdir(child).catch(() => {})
  }
}
