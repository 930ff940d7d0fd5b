import pLimit from 'p-limit'

import {isTilesyncError, TilesyncError} from '../../core/errors.js'
import {decodeCommit} from '../../snapshot/model.js'
import {TreeReader} from '../../snapshot/tree-reader.js'
import {addShallow, shallowFileOf} from '../../repo/shallow.js'
import {HashingPool} from '../../store/hashing-pool.js'
import type {LocalObjectStore} from '../../store/local-object-store.js'
import {byteBudget} from '../../util/byte-budget.js'
import type {Progress} from '../../util/progress.js'
import {emptyPlan, type ObjectPlan, planCount, planGroups} from './object-plan.js'
import {linkObject} from './link-objects.js'
import type {PushJournal} from './push-journal.js'
import type {RemoteStore} from './remote-store.js'
import {readRemoteShallow} from './shallow-remote.js'

export interface TransferStats {
  objects: number
  bytes: number
  skipped: number
}

export function transferConcurrency(fallback = 16): number {
  const v = Number(process.env.TILESYNC_JOBS)
  return Number.isInteger(v) && v > 0 ? v : fallback
}

function failed(what: string, done: TransferStats, total: number, error: unknown): TilesyncError {
  const reason = (error as {oneLine?: string; message?: string}).oneLine ?? (error as Error).message ?? String(error)
  return new TilesyncError('TRANSFER_FAILED', `${what} stopped after ${done.objects} of ${total} objects (${done.bytes} bytes): ${reason}`, {
    hint: 'nothing was published; run the same command again to send only what is still missing',
    cause: error,
  })
}

/** Where uploaded objects come from: the local store (push) or another remote (promotion). */
export interface ObjectSource {
  /** The bytes of an object, verified by hash where they are read. */
  get(id: string): Promise<Buffer>
  /** Copies `id` to `target` inside the storage service; false when it cannot. */
  copyTo?(target: RemoteStore, id: string): Promise<boolean>
}

export interface UploadOptions {
  concurrency: number
  progress?: Progress
  /** 'push' or 'promote': what messages call it. */
  verb: string
  /** Size of an object copied server-side (its bytes never pass here). */
  sizeOf: (id: string) => number
  /** Where a failed promotion leaves things, for its hint. */
  unchanged?: string
}

/**
 * Uploads a plan group by group (blobs first, commits last) through a bounded pool.
 * Objects recorded in the journal are skipped; each upload is recorded as it completes.
 */
export async function uploadPlan(source: ObjectSource, remote: RemoteStore, plan: ObjectPlan, journal: PushJournal, options: UploadOptions): Promise<TransferStats & {serverSide: number}> {
  const stats = {objects: 0, bytes: 0, skipped: 0, serverSide: 0}
  const total = planCount(plan)
  const limit = pLimit(options.concurrency)
  options.progress?.start(total, options.verb)
  try {
    for (const group of planGroups(plan)) {
      const todo = group.filter((id) => {
        if (!journal.has(id)) return true
        stats.skipped++
        options.progress?.increment()
        return false
      })
      // After a failure no new upload starts, and the error is reported once those in flight
      // have finished and are in the journal: the next run then sends only what is missing.
      let failure: {error: unknown} | undefined
      await Promise.all(todo.map((id) => limit(async () => {
        if (failure) return
        try {
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
          stats.objects++
          stats.bytes += size
          options.progress?.increment()
        } catch (error) {
          failure ??= {error}
        }
      })))
      await journal.flush()
      if (failure) throw uploadFailed(options, stats, total, failure.error)
    }
  } finally {
    options.progress?.stop()
  }
  return stats
}

/**
 * A failed push says how far it got. A promotion passes its sources' own errors through (a
 * damaged object on the source is no transfer failure) and says the destination is unchanged.
 */
function uploadFailed(options: UploadOptions, stats: TransferStats, total: number, error: unknown): TilesyncError {
  if (options.verb !== 'promote') return failed(options.verb, stats, total, error)
  if (isTilesyncError(error) && error.code !== 'TRANSFER_FAILED') return error
  const reason = (error as {oneLine?: string}).oneLine ?? (error as Error).message
  return new TilesyncError('TRANSFER_FAILED', `promote stopped after ${stats.objects} of ${total - stats.skipped} objects: ${reason}`, {
    hint: `${options.unchanged ?? 'the destination'} was not changed; run the same command again to copy only what is still missing`,
    cause: error,
  })
}

/**
 * Hard links asked of the hashing workers at once (a clone from a directory on this machine),
 * and the bytes those links may hold: each linked file is read whole to be hashed.
 */
const LINKS_IN_FLIGHT = 64
const LINK_BYTES_IN_FLIGHT = 32 * 1024 * 1024

export interface DownloadOptions {
  concurrency: number
  progress?: Progress
  dryRun?: boolean
  /**
   * Work to run while blobs are still arriving (clone builds the database this way). Its
   * reader serves the fetched trees from memory and waits for each blob until it is stored
   * and verified, so downloading and writing the database overlap.
   */
  alongside?: (reader: TreeReader) => Promise<void>
  /** Hard-link blobs from a remote that is a directory on this machine (clone), instead of copying them. */
  hardLinks?: boolean
}

/**
 * Brings the history of `tip` from a remote into the local store. Only objects missing
 * locally are fetched (a present node implies its whole subtree is present, because
 * everything is stored children first); each is verified by hash before it is kept, and
 * structured objects are written bottom-up after their blobs.
 */
export async function downloadHistory(local: LocalObjectStore, remote: RemoteStore, tip: string, options: DownloadOptions): Promise<{stats: TransferStats; commits: string[]; plan: ObjectPlan}> {
  const stats: TransferStats = {objects: 0, bytes: 0, skipped: 0}
  const fetched = new Map<string, Buffer>()
  const plan = emptyPlan()
  const limit = pLimit(options.concurrency)
  const get = async (id: string): Promise<Buffer> => {
    const bytes = await remote.getObject(id)
    fetched.set(id, bytes)
    stats.objects++
    stats.bytes += bytes.length
    return bytes
  }
  const reader = new TreeReader({
    get: async (id) => fetched.get(id) ?? local.get(id),
    has: async (id) => fetched.has(id) || local.has(id),
  })
  try {
    // 1. New commits, newest first. Below a shallow root of the remote (a prune cut its
    // history) a parent the remote no longer has ends the walk; it becomes a local shallow root.
    const newCommits: string[] = []
    const queue = [tip]
    const seen = new Set<string>()
    const remoteShallow = await readRemoteShallow(remote)
    const cut: string[] = []
    while (queue.length > 0) {
      const id = queue.shift()!
      if (seen.has(id) || (await local.hasAndKeep(id))) continue
      seen.add(id)
      newCommits.push(id)
      for (const parent of decodeCommit(fetched.get(id) ?? await get(id)).parents) {
        if (remoteShallow.has(id) && !seen.has(parent) && !(await local.has(parent))) {
          const there = await get(parent).then(() => true, (error: unknown) => {
            if ((error as {code?: string}).code === 'OBJECT_MISSING') return false
            throw error
          })
          if (!there) {
            cut.push(id)
            continue
          }
        }
        queue.push(parent)
      }
    }
    plan.commits = [...newCommits].reverse()
    // 2. Their trees, level by level, fetching only what is missing locally.
    let frontier: Array<{id: string; kind: 'snapshot' | 'table' | 'node'}> = []
    for (const c of newCommits) frontier.push({id: (await reader.commit(c)).tree, kind: 'snapshot'})
    const visited = new Set<string>()
    while (frontier.length > 0) {
      const todo = frontier.filter((f) => !visited.has(f.id) && (visited.add(f.id), true))
      const missing = (await Promise.all(todo.map(async (f) => ((await local.hasAndKeep(f.id)) ? null : f)))).filter((f) => f !== null)
      await Promise.all(missing.map((f) => limit(() => get(f.id))))
      options.progress?.increment(missing.length)
      const next: typeof frontier = []
      // Blobs of this level's leaves, in row order (the order they are downloaded and the
      // database is written in), checked against the local store all at once below.
      const leafBlobs = new Map<string, number>()
      for (const f of missing) {
        if (f.kind === 'snapshot') {
          plan.snapshots.add(f.id)
          for (const t of (await reader.snapshot(f.id)).tables) next.push({id: t.id, kind: 'table'})
        } else if (f.kind === 'table') {
          plan.tables.add(f.id)
          const root = (await reader.table(f.id)).root
          if (root) next.push({id: root, kind: 'node'})
        } else {
          const node = await reader.node(f.id)
          if (node.level === 0) {
            plan.leaves.add(f.id)
            for (const r of node.rows) for (let i = 0; i < r.types.length; i++) {
              if (r.types[i] === 'b') {
                const b = r.values[i] as {id: string; size: number}
                if (!plan.blobs.has(b.id)) leafBlobs.set(b.id, b.size)
              }
            }
          } else {
            ;(node.level === 2 ? plan.roots : plan.mids).add(f.id)
            for (const e of node.entries) next.push({id: e.id, kind: 'node'})
          }
        }
      }
      const here = await local.keepPresent(leafBlobs.keys())
      for (const [id, size] of leafBlobs) if (!here.has(id)) plan.blobs.set(id, size)
      frontier = next
    }
    // A dry run reports what the real one would: the commits and trees read so far, plus the blobs to come.
    if (options.dryRun) return {stats: {...stats, objects: stats.objects + plan.blobs.size, bytes: stats.bytes + [...plan.blobs.values()].reduce((s, n) => s + n, 0)}, commits: newCommits, plan}
    // 3. Blobs, written as they arrive (a blob refers to nothing, so order does not matter).
    options.progress?.start(plan.blobs.size, 'fetch')
    // After a failure no new download starts, and the error is reported only once those in
    // flight have finished: nothing is written behind the caller's back after it returns.
    let stopped = false
    // Many blobs: verify and store them on every core; a few: inline is cheaper.
    const pool = plan.blobs.size > 16 ? new HashingPool(local, 'store', {packed: true}) : undefined
    const fetchBlob = async (id: string): Promise<number> => {
      // A few blobs (no pool) are simply copied; links pay off for many.
      if (options.hardLinks && pool) {
        const linked = await linkObject(remote, id, pool)
        if (linked !== null) return linked
      }
      if (!pool) {
        const bytes = await remote.getObject(id)
        await local.put(bytes, id)
        return bytes.length
      }
      const bytes = await remote.getObjectBytes(id)
      if (bytes === null) throw remote.missing(id)
      const size = bytes.length
      const actual = await pool.putVerified(bytes, id)
      if (actual !== id) throw remote.corrupt(id, actual, size)
      return size
    }
    const arrived = new Map<string, {promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void}>()
    for (const id of plan.blobs.keys()) {
      let resolve!: () => void
      let reject!: (e: unknown) => void
      const promise = new Promise<void>((res, rej) => {
        resolve = res
        reject = rej
      })
      promise.catch(() => {})
      arrived.set(id, {promise, resolve, reject})
    }
    // Many links wait at the workers: the main thread, busy writing the database, reads their
    // replies late, and with only the download limit in flight the workers sat idle for a
    // quarter of a clone. Their bytes are bounded too, since a worker reads each file whole.
    const links = byteBudget(LINK_BYTES_IN_FLIGHT, LINKS_IN_FLIGHT)
    const blobLimit = <T>(id: string, job: () => Promise<T>): Promise<T> => (options.hardLinks && pool ? links(plan.blobs.get(id)!, job) : limit(job))
    const downloads = Promise.allSettled([...plan.blobs.keys()].map((id) => blobLimit(id, async () => {
      if (stopped) return
      try {
        const size = await fetchBlob(id)
        stats.objects++
        stats.bytes += size
        options.progress?.increment()
        arrived.get(id)!.resolve()
      } catch (error) {
        stopped = true
        // Nothing more will arrive: release everyone waiting, with the reason.
        for (const a of arrived.values()) a.reject(error)
        throw error
      }
    })))
    let alongside: Promise<void> = Promise.resolve()
    if (options.alongside) {
      const waitingReader = new TreeReader({
        get: async (id) => {
          const f = fetched.get(id)
          if (f) return f
          const a = arrived.get(id)
          if (a) await a.promise
          return local.get(id)
        },
        has: async (id) => fetched.has(id) || arrived.has(id) || local.has(id),
      })
      alongside = options.alongside(waitingReader)
      alongside.catch(() => {
        stopped = true
      })
    }
    const [outcomes, side] = await Promise.all([downloads, alongside.then(() => null, (e: unknown) => e)])
    await pool?.close()
    if (side) throw side
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')
    if (failure) throw failure.reason
    // 4. Structured objects bottom-up, commits oldest first (shallow roots recorded before them).
    if (cut.length) await addShallow(shallowFileOf(local.objectsDir), cut)
    for (const group of planGroups(plan).slice(1)) {
      for (const id of group) await local.put(fetched.get(id)!, id)
    }
    return {stats, commits: newCommits, plan}
  } catch (error) {
    if ((error as {code?: string}).code === 'OBJECT_CORRUPT' || (error as {code?: string}).code === 'OBJECT_MISSING') throw error
    throw failed('fetch', stats, stats.objects, error)
  } finally {
    options.progress?.stop()
  }
}
