import pLimit from 'p-limit'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {addShallow} from '../repo/shallow.js'
import {insideBox, type PartialFilter} from '../repo/partial.js'
import type {RemoteObjects, Transport} from '../remote/transport.js'
import {type BlobRef, decodeCommit, decodeNode, decodeSnapshot, decodeTable, type Row, type TableTree} from '../snapshot/model.js'
import {tileXY} from '../snapshot/rows.js'
import {TableTreeEditor} from '../snapshot/tree-editor.js'
import type {TreeState} from '../snapshot/tree-state.js'
import type {ObjectStore} from '../store/object-store.js'
import {OverlayStore} from '../store/overlay-store.js'
import type {Workspace} from '../workspace/workspace.js'
import {openRemote} from './remotes.js'

/** What a partial clone downloaded. */
export interface RegionFetch {
  /** Commits new to the local store. */
  commits: number
  objects: number
  bytes: number
  /** Image blobs of the tip inside the region (downloaded) and outside it (left on the origin). */
  blobs: {inside: number; outside: number}
}

/** The remote's objects-by-id capability, or a clear refusal for a kind without it. */
export function objectsOf(remote: Transport): RemoteObjects {
  if (!remote.objects) {
    throw new TilesyncError('REMOTE_UNSUPPORTED', `a partial clone (--bbox) needs objects by id, which ${remote.kind} remotes do not serve`, {
      hint: 'clone it whole, or clone --bbox from the bucket or directory it is pushed to',
    })
  }
  return remote.objects
}

/**
 * The partial clone's download: every commit of the tip's history with every tree (so log,
 * diff, status and push work everywhere), and of the tip's blobs only those of tiles inside
 * `bbox` plus those of the other tables. Older commits' blobs are not fetched: a command
 * that needs one reads it from the origin then (see attachOrigin). Every object is read
 * through the transport's objects capability, verified by its hash, then stored.
 */
export async function fetchRegion(ws: Workspace, objects: RemoteObjects, tip: string, bbox: PartialFilter['bbox'], options: {dryRun?: boolean} = {}): Promise<RegionFetch> {
  // A dry run reads the commits and trees into memory only, and counts the blobs by the sizes the trees record.
  const store: ObjectStore = options.dryRun ? new OverlayStore(ws.repo.store) : ws.repo.store
  const limit = pLimit(16)
  const out: RegionFetch = {commits: 0, objects: 0, bytes: 0, blobs: {inside: 0, outside: 0}}
  const seen = new Set<string>()
  const get = async (id: string): Promise<Buffer> => {
    if (await store.has(id)) return store.get(id)
    const bytes = await limit(() => objects.read(id))
    await store.put(bytes, id)
    out.objects++
    out.bytes += bytes.length
    return bytes
  }
  const shallow = await objects.shallowRoots()
  const cut: string[] = []
  // History first: commits, newest to oldest, stopping at the remote's shallow roots.
  const trees: string[] = []
  let frontier = [tip]
  while (frontier.length) {
    const next: string[] = []
    await Promise.all(frontier.map(async (id) => {
      if (seen.has(id)) return
      seen.add(id)
      if (!(await store.has(id))) out.commits++
      const commit = decodeCommit(await get(id))
      trees.push(commit.tree)
      if (shallow.has(id)) {
        cut.push(id)
        return
      }
      next.push(...commit.parents)
    }))
    frontier = next
  }
  if (cut.length && !options.dryRun) await addShallow(ws.repo.layout.shallow, cut)
  const tipTree = decodeCommit(await store.get(tip)).tree

  // Then every tree; blobs only for the tip, and of its tile table only inside the region.
  const walkNode = async (id: string, table: TableTree, blobs: 'all' | 'region' | 'none'): Promise<void> => {
    if (seen.has(`${id} ${blobs}`)) return
    seen.add(`${id} ${blobs}`)
    const node = decodeNode(await get(id))
    if (node.level > 0) {
      await Promise.all((node as {entries: Array<{id: string}>}).entries.map((e) => walkNode(e.id, table, blobs)))
      return
    }
    if (blobs === 'none') return
    const wanted: BlobRef[] = []
    for (const row of (node as {rows: Row[]}).rows) {
      const xy = blobs === 'region' ? tileXY(row, table.partition) : null
      const inside = blobs === 'all' || (xy !== null && insideBox(bbox, xy[0], xy[1]))
      for (let i = 0; i < row.types.length; i++) {
        if (row.types[i] !== 'b') continue
        if (inside) wanted.push(row.values[i] as BlobRef)
        else out.blobs.outside++
      }
    }
    out.blobs.inside += wanted.length
    if (options.dryRun) {
      for (const ref of wanted) {
        if (seen.has(ref.id) || await store.has(ref.id)) continue
        seen.add(ref.id)
        out.objects++
        out.bytes += ref.size
      }
      return
    }
    await Promise.all(wanted.map((ref) => get(ref.id)))
  }
  for (const tree of [tipTree, ...trees.filter((t) => t !== tipTree)]) {
    const snapshot = decodeSnapshot(await get(tree))
    await Promise.all(snapshot.tables.map(async (t) => {
      const table = decodeTable(await get(t.id))
      const blobs = tree !== tipTree ? 'none' : t.name === snapshot.tileTable ? 'region' : 'all'
      if (table.root) await walkNode(table.root, table, blobs)
    }))
  }
  if (!options.dryRun) await ws.repo.store.flush()
  return out
}

/** `state` with its tile table cut down to the rows inside `bbox`: what a partial clone's database holds. */
export async function regionState(ws: Workspace, state: TreeState, bbox: PartialFilter['bbox']): Promise<TreeState> {
  const name = state.snapshot.tileTable
  const tile = name ? state.tables.get(name) : undefined
  if (!name || !tile) return state
  if (tile.partition.kind !== 'spatial') {
    throw new TilesyncError('BAD_ARGUMENT', `--bbox needs a tile table keyed by x, y; "${name}" is not`, {hint: 'clone it whole'})
  }
  const editor = new TableTreeEditor(tile, null, ws.reader, ws.repo.store)
  for await (const row of ws.reader.rows(tile, bbox)) {
    const xy = tileXY(row, tile.partition)
    if (xy && insideBox(bbox, xy[0], xy[1])) await editor.put(row)
  }
  const built = await editor.finish()
  const tables = new Map(state.tables)
  tables.set(name, built.table)
  const tableIds = new Map(state.tableIds)
  tableIds.set(name, built.id)
  // The snapshot id stays the whole one: it is the baseline the change record counts from.
  return {...state, tables, tableIds}
}

/**
 * In a partial clone, makes a read of an object never downloaded fetch it from the origin
 * (verified by its hash, then kept), so that a command outside the region gets what it needs
 * instead of failing. The origin is opened on the first such read. Returns a function that
 * closes it, and how many objects were fetched so far.
 */
export function attachOrigin(ws: Workspace): {close: () => Promise<void>; fetched: () => number} {
  const filter = ws.repo.partial
  let fetched = 0
  if (!filter || ws.repo.store.fallback) return {close: async () => undefined, fetched: () => fetched}
  let remote: Promise<Transport> | undefined
  ws.repo.store.fallback = async (id) => {
    remote ??= openRemote(ws.repo, filter.remote)
    const objects = objectsOf(await remote)
    try {
      const bytes = await objects.read(id)
      fetched++
      return bytes
    } catch (error) {
      if (isTilesyncError(error, 'OBJECT_MISSING')) return null
      throw error
    }
  }
  return {
    close: async () => {
      if (remote) await (await remote).close()
    },
    fetched: () => fetched,
  }
}
