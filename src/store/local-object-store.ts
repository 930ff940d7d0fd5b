import {constants as fsc, existsSync, readFileSync} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import {hashBytes, isObjectId} from '../core/hash.js'
import {DurabilityBarrier, syncDirectory} from './durability.js'
import {writeFileAtomic} from '../util/write-file-atomic.js'
import type {ObjectStore} from './object-store.js'
import {type PackedObject, PackSet} from './pack-set.js'
import {PackWriter} from './pack-writer.js'

/**
 * Objects as files under `objects/ab/cdef…` (git's fan-out keeps directories small), and,
 * for bulk writes, in pack files under `objects/pack/` (see pack-format.ts). A loose copy
 * wins over a packed one.
 *
 * Crash safety comes from write order: bytes go to a temp file in `tmp/`, then are renamed
 * into place, and the durability barrier runs before any ref points at them. A reader therefore sees a whole object or none, and since an
 * object's name is its hash, a stale temp file can never be mistaken for an object.
 */
/** Verified bytes held for the database writer at most (see LocalObjectStore.handed). */
const HANDED_MAX_BYTES = 24 * 1024 * 1024

export class LocalObjectStore implements ObjectStore {
  private readonly knownDirs = new Set<string>()
  /**
   * While a trust window is open (clone, between downloading and writing the database), ids
   * whose file this command just wrote from verified bytes are read back without re-hashing.
   * Outside it every read re-hashes.
   */
  private verified: Set<string> | null = null
  /**
   * Within the trust window, the bytes a hashing worker just verified and stored (a clone's
   * linked blobs), handed to the first get() of their id so the file is not read again.
   * Bounded: when the database writer falls behind, later bytes are simply not kept.
   */
  private readonly handed = new Map<string, Buffer>()
  private handedBytes = 0
  readonly barrier: DurabilityBarrier
  readonly packs: PackSet
  readonly durable: boolean
  /** Packs whose file time this process already refreshed (see hasAndKeep). */
  private readonly keptPacks = new Set<string>()

  constructor(
    readonly objectsDir: string,
    readonly tmpDir: string,
    options: {durable?: boolean} = {},
  ) {
    this.durable = options.durable ?? true
    this.barrier = new DurabilityBarrier(objectsDir, this.durable)
    this.packs = new PackSet(path.join(objectsDir, 'pack'))
  }

  /** Makes every object written so far durable; called before a ref may point at them. */
  flush(): Promise<void> {
    return this.barrier.flush()
  }

  /** Records an object written by someone else on this store's behalf (the hashing workers). */
  noteWritten(id: string): void {
    this.barrier.written(this.pathOf(id))
    this.noteVerified(id)
  }

  /** Records an object a hashing worker appended to one of its packs. */
  notePacked(id: string, at: PackedObject): void {
    this.packs.notePending(id, at)
    this.noteVerified(id)
  }

  /** Records a pack a hashing worker finished (its index is in place). */
  notePackFinished(name: string): void {
    this.barrier.written(this.packs.packPath(name))
    this.barrier.written(this.packs.indexPath(name))
  }

  /** Records that `id`'s file was checked against its hash in this process. */
  noteVerified(id: string): void {
    if (this.verified && this.verified.size < 1_000_000) this.verified.add(id)
  }

  /** Whether verified bytes handed over now would be kept (a trust window is open). */
  get keepsVerifiedBytes(): boolean {
    return this.verified !== null
  }

  /** Keeps verified bytes of `id` for one get() while a trust window is open (see `handed`). */
  keepVerifiedBytes(id: string, bytes: Buffer): void {
    if (!this.verified?.has(id) || this.handed.has(id) || this.handedBytes + bytes.length > HANDED_MAX_BYTES) return
    this.handed.set(id, bytes)
    this.handedBytes += bytes.length
  }

  async withTrustWindow<T>(fn: () => Promise<T>): Promise<T> {
    this.verified = new Set()
    try {
      return await fn()
    } finally {
      this.verified = null
      this.handed.clear()
      this.handedBytes = 0
    }
  }

  pathOf(id: string): string {
    return path.join(this.objectsDir, id.slice(0, 2), id.slice(2))
  }

  async has(id: string): Promise<boolean> {
    try {
      await fs.access(this.pathOf(id), fsc.F_OK)
      return true
    } catch {
      return (await this.packs.lookup(id)) !== undefined
    }
  }

  /**
   * Like has(), and when present refreshes the file's time: a fetch that reuses an old,
   * unreachable object (and, through it, its subtree) keeps gc's grace period from
   * removing it before the ref that makes it reachable again is written.
   */
  async hasAndKeep(id: string): Promise<boolean> {
    const now = new Date()
    try {
      await fs.utimes(this.pathOf(id), now, now)
      return true
    } catch {
      const at = await this.packs.lookup(id)
      if (!at) return false
      await this.keepPack(at, now)
      return true
    }
  }

  /**
   * hasAndKeep for many ids at once: which of them are here. A fetch plans thousands of
   * blobs; asking one at a time cost two thread-pool round trips each (a failed utimes, then
   * a look at the packs directory), about a tenth of a second per thousand on an empty clone.
   * Here the packs are looked at once, absence is a synchronous existsSync, and only the files
   * that are present get their time refreshed, a batch at a time.
   */
  async keepPresent(ids: Iterable<string>): Promise<Set<string>> {
    await this.packs.refreshIfChanged()
    const now = new Date()
    const present = new Set<string>()
    let batch: Array<Promise<void>> = []
    for (const id of ids) {
      if (existsSync(this.pathOf(id))) {
        batch.push(this.hasAndKeep(id).then((here) => {
          if (here) present.add(id)
        }))
      } else {
        const at = this.packs.loadedEntry(id)
        if (at) batch.push(this.keepPack(at, now).then(() => void present.add(id)))
      }
      if (batch.length >= 256) {
        await Promise.all(batch)
        batch = []
      }
    }
    await Promise.all(batch)
    return present
  }

  /** Which of `ids` are here, loose or packed, without touching their times (one look at the packs). */
  async presentOf(ids: Iterable<string>): Promise<Set<string>> {
    await this.packs.refreshIfChanged()
    const present = new Set<string>()
    for (const id of ids) if (this.packs.loadedEntry(id) || existsSync(this.pathOf(id))) present.add(id)
    return present
  }

  /** gc ages a packed object by its pack's file time; refreshed once per pack per process. */
  private async keepPack(at: PackedObject, now: Date): Promise<void> {
    if (this.keptPacks.has(at.pack)) return
    this.keptPacks.add(at.pack)
    await fs.utimes(this.packs.packPath(at.pack), now, now).catch(() => {})
  }

  /** The stored bytes, unverified (fsck inspects damaged objects); null when absent. */
  async readRaw(id: string): Promise<Buffer | null> {
    try {
      // Synchronous on purpose: an object is one small read from the page cache, and the
      // promise API's four thread-pool round trips per file (open, stat, read, close) cost
      // more than the read itself when a clone or checkout reads thousands of them.
      return readFileSync(this.pathOf(id))
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'EISDIR') return Buffer.alloc(0)
      if (code !== 'ENOENT') throw error
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      const at = await this.packs.lookup(id)
      if (!at) return null
      const bytes = await this.packs.read(at)
      if (bytes) return bytes
      // Its pack was rewritten by a gc in another process since we read the index.
      await this.packs.reload()
    }
    return null
  }

  /** An object's size in bytes; throws OBJECT_MISSING when absent. */
  async sizeOf(id: string): Promise<number> {
    const st = await fs.stat(this.pathOf(id)).catch(() => null)
    if (st) return st.size
    const at = await this.packs.lookup(id)
    if (at) return at.length
    throw this.missing(id)
  }

  /** When the object was last written or kept (a packed one: its pack's); null when absent. */
  async mtimeOf(id: string): Promise<number | null> {
    const st = await fs.stat(this.pathOf(id)).catch(() => null)
    if (st) return st.mtimeMs
    const at = await this.packs.lookup(id)
    if (!at) return null
    return (await fs.stat(this.packs.packPath(at.pack)).catch(() => null))?.mtimeMs ?? null
  }

  private missing(id: string): TilesyncError {
    return new TilesyncError('OBJECT_MISSING', `object ${id} is missing from the local store`, {
      hint: 'fetch it again from a remote (`tilesync fetch`) or run `tilesync fsck`',
      data: {id},
    })
  }

  async get(id: string): Promise<Buffer> {
    const handed = this.handed.get(id)
    if (handed) {
      this.handed.delete(id)
      this.handedBytes -= handed.length
      return handed
    }
    // A packed object whose pack is known is read from it straight away: looking for a loose
    // file first cost a failed open (and an exception) per object, a third of a push's time for
    // 200,000 small tiles. A damaged packed copy falls through to the usual order below.
    const at = this.packs.loadedEntry(id)
    if (at) {
      const packed = await this.packs.read(at)
      if (packed && hashBytes(packed) === id) return packed
    }
    const bytes = await this.readRaw(id)
    if (bytes === null) return this.fetchMissing(id)
    if (this.verified?.has(id)) return bytes
    const actual = hashBytes(bytes)
    if (actual !== id) {
      throw new TilesyncError('OBJECT_CORRUPT', `object ${id} is corrupt (its bytes hash to ${actual.slice(0, 12)}…)`, {
        hint: 'nothing was changed; restore it from a remote with `tilesync fetch` or run `tilesync fsck`',
        data: {id, actual},
      })
    }
    return bytes
  }

  /**
   * Where an object this store never received is read from: a partial clone's origin
   * (set by src/ops/partial-clone.ts). Null when it does not have it either.
   */
  fallback?: (id: string) => Promise<Buffer | null>

  /** A missing object from the fallback, verified by its hash and kept; OBJECT_MISSING without one. */
  private async fetchMissing(id: string): Promise<Buffer> {
    const bytes = this.fallback ? await this.fallback(id) : null
    if (bytes === null) throw this.missing(id)
    const actual = hashBytes(bytes)
    if (actual !== id) {
      throw new TilesyncError('OBJECT_CORRUPT', `object ${id} read from the origin is corrupt (its bytes hash to ${actual.slice(0, 12)}…)`, {hint: 'nothing was changed; check the remote with `tilesync fsck --remote origin`', data: {id, actual}})
    }
    await this.put(bytes, id)
    return bytes
  }

  async put(bytes: Buffer, id?: string): Promise<string> {
    const objectId = id ?? hashBytes(bytes)
    const target = this.pathOf(objectId)
    if (await this.has(objectId)) return objectId
    const dir = path.dirname(target)
    if (!this.knownDirs.has(dir)) {
      await fs.mkdir(dir, {recursive: true})
      this.knownDirs.add(dir)
    }
    await writeFileAtomic(this.tmpDir, target, bytes, false)
    this.barrier.written(target)
    if (id === undefined) this.noteVerified(objectId)
    return objectId
  }

  /** Removes an object, loose or packed (gc, fsck's repair). */
  async delete(id: string): Promise<void> {
    await this.deleteMany([id])
  }

  /** Removes objects; packs holding any of them are rewritten once each. */
  async deleteMany(ids: Iterable<string>): Promise<void> {
    const drop = new Set(ids)
    for (const id of drop) await fs.rm(this.pathOf(id), {force: true})
    await this.packs.remove(drop, this.tmpDir, this.durable)
  }

  /**
   * Moves loose objects into a pack (gc), as git's repack and prune-packed do: every small
   * commit leaves its tree nodes and first few blobs as files, one per object, and a year of
   * hourly commits would leave hundreds of thousands. The pack is durable and indexed before
   * any file goes, so a crash leaves each object loose, packed, or both; a loose copy of an
   * object a pack already holds is simply removed. Files shared with another store by a hard
   * link (a clone from a directory on this machine) stay: a packed copy would store their
   * bytes a second time. A file whose bytes do not match its name stays for fsck. No pack is
   * made for fewer than `minCount` files. Says how many loose files went (dryRun: would go).
   */
  async packLoose(ids: Iterable<string>, options: {minCount?: number; dryRun?: boolean} = {}): Promise<number> {
    await this.packs.reload()
    const toPack: Array<{id: string; mtimeMs: number}> = []
    const alreadyPacked: Array<{id: string; mtimeMs: number; pack: string}> = []
    for (const id of ids) {
      const st = await fs.lstat(this.pathOf(id)).catch(() => null)
      if (!st?.isFile() || st.nlink > 1) continue
      const at = this.packs.loadedEntry(id)
      if (at) alreadyPacked.push({id, mtimeMs: st.mtimeMs, pack: at.pack})
      else toPack.push({id, mtimeMs: st.mtimeMs})
    }
    // Loose copies of packed objects always go (git's prune-packed); a new pack is made only
    // for enough objects to be worth it.
    if (toPack.length < (options.minCount ?? 1)) toPack.length = 0
    if (options.dryRun) return toPack.length + alreadyPacked.length
    const gone: string[] = []
    // The new pack takes its newest object's time and a keeping pack is raised to its loose
    // copy's: gc ages packed objects by their pack, and no object may look older than it was.
    const newestOf = new Map<string, number>()
    const raise = (pack: string, mtimeMs: number): void => {
      newestOf.set(pack, Math.max(newestOf.get(pack) ?? 0, mtimeMs))
    }
    if (toPack.length > 0) {
      const writer = new PackWriter(this.packs.dir, this.tmpDir, {durable: this.durable})
      const packedHere: Array<{id: string; mtimeMs: number}> = []
      for (const o of toPack) {
        const bytes = await this.readRaw(o.id)
        if (bytes === null || hashBytes(bytes) !== o.id) continue
        writer.append(o.id, bytes)
        packedHere.push(o)
      }
      const made = await writer.finish()
      // Folds and loops, not Math.max(...list) or push(...list): a year of loose files is more
      // arguments than a call takes.
      const newest = packedHere.reduce((m, o) => Math.max(m, o.mtimeMs), 0)
      for (const p of made) raise(p.name, newest)
      for (const o of packedHere) gone.push(o.id)
    }
    for (const o of alreadyPacked) {
      const st = await fs.stat(this.packs.packPath(o.pack)).catch(() => null)
      if (!st) continue
      // The loose copy is the good one when the packed copy is damaged: it stays, for fsck.
      const packed = await this.packs.read(this.packs.loadedEntry(o.id)!)
      if (packed === null || hashBytes(packed) !== o.id) continue
      raise(o.pack, Math.max(st.mtimeMs, o.mtimeMs))
      gone.push(o.id)
    }
    for (const [pack, mtimeMs] of newestOf) await fs.utimes(this.packs.packPath(pack), new Date(mtimeMs), new Date(mtimeMs))
    // The new indexes' names reach the disk before the loose files' removal can.
    if (this.durable) await syncDirectory(this.packs.dir)
    for (const id of gone) await fs.rm(this.pathOf(id), {force: true})
    await this.packs.reload()
    return gone.length
  }

  /** Merges many small packs into one (gc); says how many were (or, with dryRun, would be) merged. */
  async consolidatePacks(options: {dryRun?: boolean} = {}): Promise<number> {
    return (await this.packs.consolidate(this.tmpDir, this.durable, options)).merged
  }

  /**
   * Every object id present, once, with its modification time (gc's grace period; a packed
   * object has its pack's) and size.
   */
  async *list(): AsyncGenerator<{id: string; mtimeMs: number; size: number; pack?: string}> {
    const packed = new Map<string, PackedObject>()
    for await (const e of this.packs.entries()) packed.set(e.id, e)
    let fanout: string[] = []
    try {
      fanout = await fs.readdir(this.objectsDir)
    } catch {
      // no objects yet
    }
    for (const dir of fanout.sort()) {
      if (!/^[0-9a-f]{2}$/.test(dir)) continue
      const names = await fs.readdir(path.join(this.objectsDir, dir))
      for (const name of names.sort()) {
        const id = dir + name
        if (!isObjectId(id)) continue
        const st = await fs.stat(path.join(this.objectsDir, dir, name)).catch(() => null)
        if (!st) continue
        packed.delete(id)
        yield {id, mtimeMs: st.mtimeMs, size: st.size}
      }
    }
    const packTimes = new Map<string, number>()
    for (const [id, at] of [...packed].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (!packTimes.has(at.pack)) packTimes.set(at.pack, (await fs.stat(this.packs.packPath(at.pack)).catch(() => null))?.mtimeMs ?? Date.now())
      yield {id, mtimeMs: packTimes.get(at.pack)!, size: at.length, pack: at.pack}
    }
  }
}
