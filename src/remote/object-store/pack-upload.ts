import pLimit from 'p-limit'

import type {ObjectPlan} from './object-plan.js'
import {type BuiltPack, PackBuilder, type PackKind} from './pack-builder.js'
import {packKeys} from './remote-pack-index.js'
import type {RemoteStore} from './remote-store.js'
import {type ObjectSource, type TransferStats, uploadFailed, type UploadOptions} from './transfer.js'

/** What uploadPacks needs of a push journal (push-journal.ts): what landed before, and recording what lands now. */
export interface UploadJournal {
  has(id: string): boolean
  record(id: string): void
  flush(): Promise<void>
}

/** A pack is closed at about this size: large enough that requests stay few, small enough to build in memory. */
export const PACK_TARGET_BYTES = 32 * 1024 * 1024

/** PACK_TARGET_BYTES, or TILESYNC_PACK_BYTES (at least 4 KiB): smaller packs in tests, larger on a fast link. */
export function packTargetBytes(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.TILESYNC_PACK_BYTES)
  return Number.isInteger(v) && v >= 4096 ? v : PACK_TARGET_BYTES
}
/** Packs being uploaded at once (each may itself be a multipart upload of a few parts in parallel). */
const PACKS_IN_FLIGHT = 3

/**
 * Uploads a plan as packs, as restic does: the tile images in data packs of about
 * PACK_TARGET_BYTES, then commits and trees in tree packs, each pack followed by its index
 * (an object is on the remote once the index naming it is). A group of one object goes up
 * loose, one request instead of two. Objects in the journal are skipped; each pack's objects
 * are recorded once its index has landed, so an interrupted push sends again only the packs
 * that did not land. When `copyPacks` is given (promotion between buckets of one account),
 * packs of the source that hold what is to be sent are copied inside the storage service.
 */
export async function uploadPacks(source: ObjectSource, remote: RemoteStore, plan: ObjectPlan, journal: UploadJournal, options: UploadOptions & {cacheDir?: string; from?: RemoteStore}): Promise<TransferStats & {serverSide: number}> {
  const stats = {objects: 0, bytes: 0, skipped: 0, serverSide: 0}
  const blobs = [...plan.blobs.keys()]
  const trees = [...plan.leaves, ...plan.mids, ...plan.roots, ...plan.tables, ...plan.snapshots, ...plan.commits]
  const total = blobs.length + trees.length
  const index = await remote.packIndex(options.cacheDir)
  const pendingOf = (ids: string[]): string[] => ids.filter((id) => {
    if (!journal.has(id)) return true
    stats.skipped++
    options.progress?.increment()
    return false
  })
  options.progress?.start(total, options.verb)
  try {
    for (const [kind, group] of [['data', blobs], ['tree', trees]] as Array<[PackKind, string[]]>) {
      let todo = pendingOf(group)
      if (options.from) todo = await copyWholePacks(options.from, remote, todo, journal, stats, options)
      if (todo.length === 0) continue
      if (todo.length === 1) {
        await sendLoose(source, remote, todo[0], journal, stats, options)
        continue
      }
      await sendPacks(source, remote, kind, todo, journal, stats, options, (p) => index.noteUploaded(p.name, p.index, p.pack.length))
    }
  } catch (error) {
    throw uploadFailed(options, stats, total, error)
  } finally {
    options.progress?.stop()
  }
  return stats
}

async function sendLoose(source: ObjectSource, remote: RemoteStore, id: string, journal: UploadJournal, stats: TransferStats & {serverSide: number}, options: UploadOptions): Promise<void> {
  let size: number
  if (await source.copyTo?.(remote, id)) {
    stats.serverSide++
    size = options.sizeOf(id)
  } else {
    const bytes = await source.get(id)
    await remote.putObject(id, bytes)
    size = bytes.length
  }
  journal.record(id)
  await journal.flush()
  stats.objects++
  stats.bytes += size
  options.progress?.increment()
}

/**
 * Reads the objects in order, closing a pack each time it reaches the target size, and
 * uploads up to PACKS_IN_FLIGHT at once. After a failure no new pack starts; the error is
 * reported once those in flight are done and in the journal.
 */
async function sendPacks(source: ObjectSource, remote: RemoteStore, kind: PackKind, ids: string[], journal: UploadJournal, stats: TransferStats, options: UploadOptions, landed: (p: BuiltPack) => void): Promise<void> {
  let failure: {error: unknown} | undefined
  const inFlight = new Set<Promise<void>>()
  const upload = (built: BuiltPack): void => {
    const p = (async () => {
      try {
        await remote.backend.put(packKeys.pack(built.name), built.pack)
        await remote.backend.put(packKeys.index(built.name), built.index)
        landed(built)
        for (const id of built.ids) journal.record(id)
        await journal.flush()
        stats.objects += built.ids.length
        stats.bytes += built.payload
        options.progress?.increment(built.ids.length)
      } catch (error) {
        failure ??= {error}
      }
    })()
    inFlight.add(p)
    void p.finally(() => inFlight.delete(p))
  }
  let builder = new PackBuilder(kind)
  for (const id of ids) {
    if (failure) break
    builder.append(id, await source.get(id))
    if (builder.bytes >= packTargetBytes()) {
      // At most PACKS_IN_FLIGHT packs in memory besides the one being built.
      while (inFlight.size >= PACKS_IN_FLIGHT) await Promise.race(inFlight)
      if (failure) break
      upload(builder.finish())
      builder = new PackBuilder(kind)
    }
  }
  if (!failure && builder.count > 0) upload(builder.finish())
  await Promise.all(inFlight)
  if (failure) throw failure.error
}

/**
 * Promotion: the source's packs that hold any of `ids` are copied whole (pack, then index),
 * server-side, under the same name (a name is its index's hash). What they hold besides is
 * harmless there (a prune removes it). Returns the ids still to send: loose on the source, or
 * all of them when the two backends cannot copy between themselves.
 */
async function copyWholePacks(from: RemoteStore, remote: RemoteStore, ids: string[], journal: UploadJournal, stats: TransferStats & {serverSide: number}, options: UploadOptions): Promise<string[]> {
  const fromIndex = await from.packIndex()
  const byPack = new Map<string, string[]>()
  const rest: string[] = []
  for (const id of ids) {
    const at = fromIndex.lookup(id)
    if (!at) {
      rest.push(id)
      continue
    }
    let list = byPack.get(at.pack)
    if (!list) byPack.set(at.pack, (list = []))
    list.push(id)
  }
  const limit = pLimit(PACKS_IN_FLIGHT * 2)
  let cannot = false
  const index = await remote.packIndex()
  await Promise.all([...byPack].map(([name, packIds]) => limit(async () => {
    if (cannot) return
    if (!(await remote.backend.copyFrom?.(from.backend, packKeys.pack(name)))) {
      cannot = true
      return
    }
    await remote.backend.copyFrom!(from.backend, packKeys.index(name))
    index.noteKnown(fromIndex.packs.get(name)!, fromIndex.indexBytes(name))
    for (const id of packIds) {
      journal.record(id)
      stats.objects++
      stats.serverSide++
      stats.bytes += options.sizeOf(id)
    }
    await journal.flush()
    options.progress?.increment(packIds.length)
  })))
  if (cannot) return ids.filter((id) => !journal.has(id))
  return rest
}
