import pLimit from 'p-limit'

import {decodeCommit} from '../../snapshot/model.js'
import {TreeReader} from '../../snapshot/tree-reader.js'
import {addShallow, shallowFileOf} from '../../repo/shallow.js'
import {HashingPool} from '../../store/hashing-pool.js'
import type {LocalObjectStore} from '../../store/local-object-store.js'
import {diskFullError, PackWriter} from '../../store/pack-writer.js'
import {byteBudget} from '../../util/byte-budget.js'
import type {Progress} from '../../util/progress.js'
import {linkObject} from './link-objects.js'
import {linkPack} from './link-packs.js'
import {emptyPlan, type ObjectPlan, planGroups} from './object-plan.js'
import {readObjects} from './pack-reads.js'
import type {RemotePackIndex} from './remote-pack-index.js'
import type {RemoteStore} from './remote-store.js'
import {readRemoteShallow} from './shallow-remote.js'
import {failed, type TransferStats} from './transfer.js'

/**
 * Hard links asked of the hashing workers at once (a clone of loose objects from a directory
 * on this machine), and the bytes those links may hold: each linked file is read whole to be hashed.
 */
const LINKS_IN_FLIGHT = 64
const LINK_BYTES_IN_FLIGHT = 32 * 1024 * 1024
/** Structured objects are written loose up to this many; more go into one local pack (a clone's thousands of leaves). */
const TREES_LOOSE_UP_TO = 8
/** Decoded objects the readers of a download keep (roots and level-1 nodes are revisited, leaves are not). */
const WALK_CACHE = 64

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
  /** Hard-link loose blobs from a remote that is a directory on this machine (clone), instead of copying them. */
  hardLinks?: boolean
  /** Where the remote's pack indexes are cached between runs (saved only when the fetch succeeds). */
  cacheDir?: string
}

/**
 * Brings the history of `tip` from a remote into the local store. What the remote holds is
 * learnt from its pack indexes; the tree packs holding anything missing here are read first
 * (whole when most of them is missing), so walking the history costs no request per object.
 * Only objects missing locally are fetched (a present node implies its whole subtree is
 * present, because everything is stored children first); blobs come by ranged reads that
 * merge neighbours, whole packs where most is wanted. Every object is verified by hash before
 * it is kept; a damaged one stops the fetch before anything is written (blobs go into packs
 * whose index is written only at the end). Structured objects are written after their blobs.
 * Objects of the layout before packs (one key each) are read by key.
 */
export async function downloadHistory(local: LocalObjectStore, remote: RemoteStore, tip: string, options: DownloadOptions): Promise<{stats: TransferStats; commits: string[]; plan: ObjectPlan}> {
  const stats: TransferStats = {objects: 0, bytes: 0, skipped: 0}
  const fetched = new Map<string, Buffer>()
  const plan = emptyPlan()
  const limit = pLimit(options.concurrency)
  const index = await remote.packIndex(options.cacheDir)
  const keep = (id: string, bytes: Buffer): void => {
    if (fetched.has(id)) return
    fetched.set(id, bytes)
    stats.objects++
    stats.bytes += bytes.length
  }
  /** Brings `ids` (structured objects) into `fetched`, in as few requests as their places allow. */
  const fetchTrees = async (ids: string[]): Promise<void> => {
    const todo = ids.filter((id) => !fetched.has(id))
    if (todo.length) await readObjects(remote, index, todo, {onObject: keep})
  }
  const get = async (id: string): Promise<Buffer> => {
    await fetchTrees([id])
    return fetched.get(id)!
  }
  // A small cache of decoded objects: the walk visits each node once, and 4,096 decoded
  // leaves of a 100,000-tile table (every row's cells) were a third of a clone's memory.
  const reader = new TreeReader({
    get: async (id) => fetched.get(id) ?? local.get(id),
    has: async (id) => fetched.has(id) || local.has(id),
  }, WALK_CACHE)
  try {
    // 0. The tree packs that hold anything missing here, read at once: the walk below then
    // finds its commits and trees in memory. (What it reads and does not need is dropped.)
    const treeIds: string[] = []
    for (const p of index.packs.values()) if (p.kind === 'tree') for (const e of p.entries) treeIds.push(e.id)
    const present = await local.presentOf(treeIds)
    await fetchTrees(treeIds.filter((id) => !present.has(id)))
    const prefetched = new Set(fetched.keys())

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
    // 2. Their trees, level by level, fetching only what is missing locally (one batch of ranged reads per level).
    let frontier: Array<{id: string; kind: 'snapshot' | 'table' | 'node'}> = []
    for (const c of newCommits) frontier.push({id: (await reader.commit(c)).tree, kind: 'snapshot'})
    const visited = new Set<string>()
    while (frontier.length > 0) {
      const todo = frontier.filter((f) => !visited.has(f.id) && (visited.add(f.id), true))
      const missing = (await Promise.all(todo.map(async (f) => ((await local.hasAndKeep(f.id)) ? null : f)))).filter((f) => f !== null)
      await fetchTrees(missing.map((f) => f.id))
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
    // Prefetched trees this history does not need are not counted or kept.
    const needed = new Set(planGroups(plan).slice(1).flat())
    for (const id of prefetched) {
      if (needed.has(id)) continue
      const bytes = fetched.get(id)!
      fetched.delete(id)
      stats.objects--
      stats.bytes -= bytes.length
    }
    // A dry run reports what the real one would: the commits and trees read so far, plus the blobs to come.
    if (options.dryRun) return {stats: {...stats, objects: stats.objects + plan.blobs.size, bytes: stats.bytes + [...plan.blobs.values()].reduce((s, n) => s + n, 0)}, commits: newCommits, plan}

    // 3. Blobs, stored as they arrive (a blob refers to nothing, so order does not matter).
    await fetchBlobs(local, remote, index, plan, fetched, stats, options)

    // 4. Structured objects bottom-up, commits oldest first (shallow roots recorded before them).
    if (cut.length) await addShallow(shallowFileOf(local.objectsDir), cut)
    const structured = planGroups(plan).slice(1).flat()
    if (structured.length > TREES_LOOSE_UP_TO) {
      // One pack, visible at once when its index lands: never a node without its children.
      const writer = new PackWriter(local.packs.dir, local.tmpDir, {durable: local.durable})
      let made
      try {
        for (const id of structured) writer.append(id, fetched.get(id)!)
        made = await writer.finish()
      } catch (error) {
        writer.abandon()
        throw diskFullError(error)
      }
      for (const p of made) local.notePackFinished(p.name)
      await local.packs.refreshIfChanged()
    } else {
      for (const id of structured) await local.put(fetched.get(id)!, id)
    }
    await index.saveCache()
    return {stats, commits: newCommits, plan}
  } catch (error) {
    // Damage and a full disk say what they are (their hints say nothing was changed).
    if (['OBJECT_CORRUPT', 'OBJECT_MISSING', 'DISK_FULL'].includes((error as {code?: string}).code ?? '')) throw error
    throw failed('fetch', stats, stats.objects, error)
  } finally {
    options.progress?.stop()
  }
}

/**
 * The blobs of a plan: packed ones by ranged reads, stored through a hashing pool that checks
 * each against its id (its packs become visible at the pool's close); loose ones one key
 * each, hard-linked from a directory remote when asked. `alongside` reads each blob as soon
 * as it is stored and verified.
 */
async function fetchBlobs(local: LocalObjectStore, remote: RemoteStore, index: RemotePackIndex, plan: ObjectPlan, fetched: ReadonlyMap<string, Buffer>, stats: TransferStats, options: DownloadOptions): Promise<void> {
  options.progress?.start(plan.blobs.size, 'fetch')
  const packed: string[] = []
  const loose: string[] = []
  for (const id of plan.blobs.keys()) (index.lookup(id) ? packed : loose).push(id)
  // From a directory on this machine, data packs most of which is wanted are hard-linked whole.
  const linkable = new Map<string, string[]>()
  if (options.hardLinks && remote.backend.localFile && plan.blobs.size > 16) {
    const byPack = new Map<string, string[]>()
    for (const id of packed) {
      const pack = index.lookup(id)!.pack
      let list = byPack.get(pack)
      if (!list) byPack.set(pack, (list = []))
      list.push(id)
    }
    for (const [name, ids] of byPack) {
      const p = index.packs.get(name)!
      if (p.kind === 'data' && ids.length * 2 >= p.entries.length) linkable.set(name, ids)
    }
  }
  const viaLinks = new Set([...linkable.values()].flat())
  // Many blobs: verify and store them on every core; a few: inline is cheaper.
  const pool = plan.blobs.size > 16 ? new HashingPool(local, 'store', {packed: true}) : undefined
  // After a failure no new download starts, and the error is reported only once those in
  // flight have finished: nothing is written behind the caller's back after it returns.
  let failure: {error: unknown} | undefined
  const landed = new Set<string>()
  const waiting = new Map<string, Array<{resolve: () => void; reject: (e: unknown) => void}>>()
  const arrive = (id: string, size: number): void => {
    stats.objects++
    stats.bytes += size
    options.progress?.increment()
    landed.add(id)
    for (const w of waiting.get(id) ?? []) w.resolve()
    waiting.delete(id)
  }
  const fail = (error: unknown): void => {
    failure ??= {error}
    // Nothing more will arrive: release everyone waiting, with the reason.
    for (const list of waiting.values()) for (const w of list) w.reject(failure.error)
    waiting.clear()
  }
  const store = async (id: string, bytes: Buffer): Promise<void> => {
    if (!pool) {
      await local.put(bytes, id)
      return
    }
    const actual = await pool.putVerified(bytes, id)
    if (actual !== id) throw remote.corrupt(id, actual, bytes.length)
  }
  const readPacked = (ids: string[]): Promise<void> => readObjects(remote, index, ids, {
    verify: !pool,
    stopped: () => failure !== undefined,
    onObject: async (id, bytes) => {
      const size = bytes.length
      await store(id, bytes)
      arrive(id, size)
    },
  })
  const fromPacks = (async () => {
    const ranged = readPacked(packed.filter((id) => !viaLinks.has(id)))
    const fallback: string[] = []
    for (const [name, ids] of linkable) {
      if (failure) break
      const linked = await linkPack(local, remote, index.packs.get(name)!)
      if (linked === null) {
        fallback.push(...ids)
        continue
      }
      for (const e of linked) if (plan.blobs.has(e.id) && !landed.has(e.id)) arrive(e.id, e.length)
    }
    await ranged
    if (fallback.length) await readPacked(fallback)
  })().catch(fail)
  // Loose blobs (a remote written before packs): one key each, links where possible.
  const limit = pLimit(options.concurrency)
  const links = byteBudget(LINK_BYTES_IN_FLIGHT, LINKS_IN_FLIGHT)
  const fromKeys = Promise.all(loose.map((id) => (options.hardLinks && pool ? (job: () => Promise<void>) => links(plan.blobs.get(id)!, job) : limit)(async () => {
    if (failure) return
    try {
      if (options.hardLinks && pool) {
        const linked = await linkObject(remote, id, pool)
        if (linked !== null) return arrive(id, linked)
      }
      const bytes = pool ? await remote.getObjectBytes(id) : await remote.getObject(id)
      if (bytes === null) throw remote.missing(id)
      await store(id, bytes)
      arrive(id, bytes.length)
    } catch (error) {
      fail(error)
    }
  })))
  let alongside: Promise<unknown> = Promise.resolve()
  if (options.alongside) {
    const waitFor = (id: string): Promise<void> => {
      if (landed.has(id) || !plan.blobs.has(id)) return Promise.resolve()
      if (failure) return Promise.reject(failure.error)
      return new Promise((resolve, reject) => {
        let list = waiting.get(id)
        if (!list) waiting.set(id, (list = []))
        list.push({resolve, reject})
      })
    }
    const waitingReader = new TreeReader({
      get: async (id) => {
        const f = fetched.get(id)
        if (f) return f
        await waitFor(id)
        return local.get(id)
      },
      has: async (id) => fetched.has(id) || plan.blobs.has(id) || local.has(id),
    }, WALK_CACHE)
    alongside = options.alongside(waitingReader).catch((error: unknown) => {
      failure ??= {error}
      throw error
    })
  }
  const [, , side] = await Promise.all([fromPacks, fromKeys, alongside.then(() => null, (e: unknown) => e)])
  options.progress?.stop()
  if (failure) {
    // The pool's packs are left without an index: they hold nothing (gc removes them).
    await pool?.abandon()
    throw side ?? failure.error
  }
  await pool?.close()
  if (side) throw side
}
