import * as fs from 'node:fs'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import {hashBytes, isObjectId} from '../core/hash.js'
import type {Db} from '../db/open-database.js'
import {type ChangeSet, compareOptions, computeChangeSet, ignoreOf, layerPhrase} from '../snapshot/change-set.js'
import {diff} from '../ops/diff.js'
import {log, type LogEntry} from '../ops/log.js'
import {perceptualDiff, type ImageVerdict} from '../ops/perceptual-diff.js'
import type {TreeState} from '../snapshot/tree-state.js'
import type {Workspace} from '../workspace/workspace.js'
import type {BlobRef, Row, TableTree} from '../snapshot/model.js'
import {LayoutPair} from '../snapshot/layout-compare.js'
import {tileXY} from '../snapshot/rows.js'
import type {BBox, TreeReader} from '../snapshot/tree-reader.js'
import {isPng, thumbnail} from './images.js'
import {ThumbnailCache} from './thumbnail-cache.js'

/** The revision name the viewer uses for the working database. */
export const WORKING = 'working'

/** Thumbnail sizes `serve` makes on request: small, the side panel, large. */
export const THUMB_SIZES = [32, 128, 256] as const

/** A revision or the working database, as a tree state with a reader for its nodes. */
export interface Side {
  revision: string
  state: TreeState
  reader: TreeReader
}

export interface TileVersion {
  commit: string
  message: string
  author: string
  date: string
  status: 'added' | 'modified' | 'deleted'
  layers: Record<string, BlobRef | null>
  /**
   * Per layer that changed in this version: added (it had no image there), removed (its
   * image was set to NULL: the layer was taken off the tile, the tile stays) or modified.
   */
  layerChanges: Record<string, 'added' | 'removed' | 'modified'>
  /** The same as sentences: "dark_mode removed from tile 3,4". */
  summary: string[]
}

export interface TileHistory {
  x: number
  y: number
  layers: string[]
  versions: TileVersion[]
}

interface WorkingScan {
  side: Side
  /** Where each image of the working database sits, for images not in the object store. */
  locator: Map<string, {x: number; y: number; column: string}>
  table: TableTree | undefined
  tableName: string | null
  db?: Db
}

const MAX_BOX_TILES = 4096

/**
 * Read-only views of a repository for the viewer and the HTML report: revisions and the
 * working database as tree states, images by object id (verified by hash), thumbnails
 * through a content-addressed cache, tile histories. (The map itself is the pyramid's:
 * pyramid/builder.ts.)
 */
export class RepoView {
  readonly thumbs: ThumbnailCache
  private working?: {key: string; scan: Promise<WorkingScan>}

  constructor(readonly ws: Workspace, options: {cache?: ThumbnailCache} = {}) {
    const dir = ws.repo.layout.dir
    this.thumbs = options.cache ?? new ThumbnailCache(path.join(dir, 'cache', 'thumbs'), ws.repo.layout.tmp)
  }

  close(): void {
    void this.working?.scan.then((w) => w.db?.close()).catch(() => {})
    this.working = undefined
  }

  /** A revision (anything `tilesync log` accepts) or `working`. */
  async side(revision: string): Promise<Side> {
    if (revision === WORKING) return (await this.workingScan()).side
    const id = await this.ws.resolve(revision)
    return {revision: id, state: await this.ws.stateOf(id), reader: this.ws.reader}
  }

  private async workingScan(): Promise<WorkingScan> {
    const key = this.workingKey()
    if (this.working?.key === key) return this.working.scan
    const previous = this.working
    const scan = this.scanWorking()
    this.working = {key, scan}
    scan.catch(() => {
      if (this.working?.scan === scan) this.working = undefined
    })
    void previous?.scan.then((w) => w.db?.close()).catch(() => {})
    return scan
  }

  /** Changes when the database file (or its WAL) is written. */
  private workingKey(): string {
    const parts: string[] = []
    for (const f of [this.ws.repo.databasePath, `${this.ws.repo.databasePath}-wal`]) {
      try {
        const st = fs.statSync(f)
        parts.push(`${st.size}:${st.mtimeMs}`)
      } catch {
        parts.push('-')
      }
    }
    return parts.join('|')
  }

  private async scanWorking(): Promise<WorkingScan> {
    const db = this.ws.openDb(true)
    let scanned
    try {
      scanned = await this.ws.scan(db, {store: false})
    } finally {
      db.close()
    }
    const side: Side = {revision: WORKING, state: scanned.state, reader: scanned.reader}
    const tableName = side.state.snapshot.tileTable
    const table = tableName ? side.state.tables.get(tableName) : undefined
    const locator = new Map<string, {x: number; y: number; column: string}>()
    if (table) {
      for await (const row of side.reader.rows(table)) {
        const xy = tileXY(row, table.partition)
        if (!xy) continue
        for (const li of table.layers) {
          if (row.types[li] === 'b') locator.set((row.values[li] as BlobRef).id, {x: xy[0], y: xy[1], column: table.columns[li].name})
        }
      }
    }
    return {side, locator, table, tableName}
  }

  /** Whether `id` names an image the viewer may serve: in the store, or in the working database. */
  async knows(id: string): Promise<boolean> {
    if (!isObjectId(id)) return false
    if (await this.ws.repo.store.has(id)) return true
    return this.working ? (await this.working.scan.catch(() => undefined))?.locator.has(id) ?? false : false
  }

  /** An object's bytes, checked against its id wherever they come from. */
  async blob(id: string): Promise<Buffer> {
    if (!isObjectId(id)) throw new TilesyncError('BAD_ARGUMENT', `"${id}" is not an object id`)
    if (await this.ws.repo.store.has(id)) return this.ws.repo.store.get(id)
    const w = this.working ? await this.working.scan.catch(() => undefined) : undefined
    const where = w?.locator.get(id)
    if (!w || !where || !w.table || !w.tableName || w.table.partition.kind !== 'spatial') {
      throw new TilesyncError('OBJECT_MISSING', `no object ${id}`)
    }
    const q = (name: string): string => `"${name.replaceAll('"', '""')}"`
    const xName = w.table.columns[w.table.partition.x].name
    const yName = w.table.columns[w.table.partition.y].name
    w.db ??= this.ws.openDb(true)
    const row = w.db.prepare(`SELECT ${q(where.column)} AS v FROM ${q(w.tableName)} WHERE ${q(xName)} = ? AND ${q(yName)} = ?`).get(where.x, where.y) as {v: unknown} | undefined
    const bytes = row && Buffer.isBuffer(row.v) ? row.v : null
    if (!bytes || hashBytes(bytes) !== id) {
      throw new TilesyncError('OBJECT_MISSING', `object ${id} is no longer in the working database`, {hint: 'reload the map'})
    }
    return bytes
  }

  /** A square WebP thumbnail of a PNG image, cached by the image's id. */
  thumbnail(id: string, size: number): Promise<Buffer> {
    return this.thumbs.get(`t${size}`, id, () => this.thumbs.limit(async () => thumbnail(await this.png(id), size)))
  }

  private async png(id: string): Promise<Buffer> {
    const bytes = await this.blob(id)
    if (!isPng(bytes)) throw new TilesyncError('OBJECT_MISSING', `object ${id} is not a PNG image`)
    return bytes
  }

  /** The image ids of the tiles inside a box (inclusive). */
  async tiles(revision: string, bbox: BBox): Promise<{revision: string; layers: string[]; tiles: Array<[number, number, Record<string, string | null>]>}> {
    const side = await this.side(revision)
    const {table} = tileTableOf(side)
    const out: {revision: string; layers: string[]; tiles: Array<[number, number, Record<string, string | null>]>} = {revision: side.revision, layers: [], tiles: []}
    if (!table || table.partition.kind !== 'spatial') return out
    if ((bbox[2] - bbox[0] + 1) * (bbox[3] - bbox[1] + 1) > MAX_BOX_TILES) {
      throw new TilesyncError('BAD_ARGUMENT', `a box may cover at most ${MAX_BOX_TILES} tiles`)
    }
    out.layers = table.layers.map((i) => table.columns[i].name)
    for await (const row of side.reader.rows(table, bbox)) {
      const xy = tileXY(row, table.partition)
      if (!xy || xy[0] < bbox[0] || xy[0] > bbox[2] || xy[1] < bbox[1] || xy[1] > bbox[3]) continue
      const ids: Record<string, string | null> = {}
      table.layers.forEach((li, i) => {
        ids[out.layers[i]] = row.types[li] === 'b' ? (row.values[li] as BlobRef).id : null
      })
      out.tiles.push([xy[0], xy[1], ids])
    }
    return out
  }

  /** What `tilesync diff FROM TO --json` reports; TO may be `working`. */
  async diff(from: string, to: string): Promise<{from: string; to: string; changes: ChangeSet}> {
    if (to !== WORKING) return diff(this.ws, {from, to})
    const fromId = await this.ws.resolve(from)
    const working = await this.side(WORKING)
    return {from: fromId, to: WORKING, changes: await computeChangeSet(await this.ws.stateOf(fromId), working.state, working.reader)}
  }

  /**
   * What happened to the images of each modified tile between two revisions (TO may be
   * `working`), as `tilesync diff --perceptual` decides it; signatures not yet cached are made now.
   */
  async perceptual(from: string, to: string): Promise<{from: string; to: string; threshold: number; tiles: Array<{x: number; y: number; verdict: ImageVerdict}>}> {
    const {from: fromId, to: toId, changes} = await this.diff(from, to)
    const working = to === WORKING ? (await this.side(WORKING)).state : undefined
    const result = await perceptualDiff(this.ws, changes, {working})
    const tiles = result.tiles.filter((t) => t.x !== undefined && t.y !== undefined).map((t) => ({x: t.x!, y: t.y!, verdict: t.verdict}))
    return {from: fromId, to: toId, threshold: result.threshold, tiles}
  }

  log(revision: string | undefined, limit: number): Promise<LogEntry[]> {
    return log(this.ws, {revision, limit})
  }

  async refs(): Promise<{head: string | null; branch: string | null; branches: Array<{name: string; id: string}>; tags: Array<{name: string; id: string}>}> {
    const refs = this.ws.repo.refs
    const head = await refs.readHead()
    const strip = (prefix: string) => (r: {name: string; id: string}) => ({name: r.name.slice(prefix.length), id: r.id})
    return {
      head: await refs.headCommit(),
      branch: head.kind === 'branch' ? head.branch : null,
      branches: (await refs.list('refs/heads')).map(strip('refs/heads/')),
      tags: (await refs.list('refs/tags')).map(strip('refs/tags/')),
    }
  }

  /**
   * The versions of one tile, newest first: every commit reachable from `revision` where the
   * tile differs from its first parent, plus the working database first when `revision` is
   * `working` and the tile differs there from HEAD.
   */
  async tileHistory(revision: string, x: number, y: number, limit = 500): Promise<TileHistory> {
    const out: TileHistory = {x, y, layers: [], versions: []}
    const start = revision === WORKING ? await this.ws.repo.refs.headCommit() : await this.ws.resolve(revision)
    const rowAt = new Map<string, Found>()
    const tileAt = async (commit: string | null): Promise<Found> => {
      if (!commit) return {row: null}
      const hit = rowAt.get(commit)
      if (hit) return hit
      const found = await findTile(await this.ws.stateOf(commit), this.ws.reader, x, y)
      rowAt.set(commit, found)
      return found
    }
    const version = (commit: string, meta: {message: string; author: string; date: string}, now: Found, before: Found): TileVersion | null => {
      if (!now.row && !before.row) return null
      const pair = now.row && before.row ? new LayoutPair(before.table!, now.table!, compareOptions(now.state!.snapshot.tileTable ?? '', before.state!, now.state!, ignoreOf(before.state!, now.state!))) : null
      if (pair && now.row && before.row && pair.equal(before.row, now.row)) return null
      const shown = now.row ? now : before
      const layers: Record<string, BlobRef | null> = {}
      const layerChanges: Record<string, 'added' | 'removed' | 'modified'> = {}
      const summary: string[] = []
      const names = [...new Set([...(before.table?.layers ?? []).map((i) => before.table!.columns[i].name), ...shown.table!.layers.map((i) => shown.table!.columns[i].name)])]
      const refOf = (f: Found, name: string): BlobRef | null => {
        const i = f.table?.columns.findIndex((c) => c.name === name) ?? -1
        return f.row && i >= 0 && f.row.types[i] === 'b' ? (f.row.values[i] as BlobRef) : null
      }
      for (const name of names) {
        if (!out.layers.includes(name)) out.layers.push(name)
        const neu = refOf(now, name)
        const old = refOf(before, name)
        layers[name] = neu
        if (neu?.id === old?.id) continue
        const change = !old ? 'added' : !neu ? 'removed' : 'modified'
        layerChanges[name] = change
        if (now.row && before.row) summary.push(layerPhrase({layer: name, change, old, new: neu}, `${x},${y}`))
      }
      return {commit, ...meta, status: !before.row ? 'added' : !now.row ? 'deleted' : 'modified', layers, layerChanges, summary}
    }
    if (revision === WORKING) {
      const working = await this.side(WORKING)
      const v = version(WORKING, {message: '(uncommitted changes in the working database)', author: '', date: ''}, await findTile(working.state, working.reader, x, y), await tileAt(start))
      if (v) out.versions.push(v)
    }
    if (start) {
      for (const entry of await log(this.ws, {revision: start})) {
        if (out.versions.length >= limit) break
        const v = version(entry.id, {message: entry.message, author: entry.author, date: entry.date}, await tileAt(entry.id), await tileAt(entry.parents[0] ?? null))
        if (v) out.versions.push(v)
      }
    }
    return out
  }
}

function tileTableOf(side: Side): {table: TableTree | undefined} {
  const name = side.state.snapshot.tileTable
  return {table: name ? side.state.tables.get(name) : undefined}
}

interface Found {
  row: Row | null
  table?: TableTree
  state?: TreeState
}

async function findTile(state: TreeState, reader: TreeReader, x: number, y: number): Promise<Found> {
  const name = state.snapshot.tileTable
  const table = name ? state.tables.get(name) : undefined
  if (!table || table.partition.kind !== 'spatial') return {row: null}
  for await (const row of reader.rows(table, [x, y, x, y])) {
    const xy = tileXY(row, table.partition)
    if (xy && xy[0] === x && xy[1] === y) return {row, table, state}
  }
  return {row: null, table, state}
}
