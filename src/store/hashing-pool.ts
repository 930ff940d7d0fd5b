import {existsSync} from 'node:fs'
import * as os from 'node:os'
import {Worker} from 'node:worker_threads'

import {TilesyncError} from '../core/errors.js'
import {activeHashImplementation, hashBytes} from '../core/hash.js'
import type {LocalObjectStore} from './local-object-store.js'
import type {ObjectWriter} from './object-store.js'
import {diskFullError as diskError, type PackedAt, type FinishedPack, PackWriter} from './pack-writer.js'

/** Blobs smaller than this are hashed in place: a message round trip would cost more. */
const INLINE_BELOW = 16 * 1024
/** As the workers do (hash-worker.ts): the first few new objects of a packed pool stay loose, so a small write leaves no tiny pack. */
const LOOSE_FIRST = 8

type Reply = {seq: number; id?: string; wrote?: boolean; at?: PackedAt; packs?: FinishedPack[]; linked?: boolean; size?: number; bytes?: Uint8Array; error?: {message: string; code?: string}}

/**
 * How many workers a pool starts. With blake3-wasm (~0.6-1 GB/s a core) hashing is the slowest
 * part of a full read, so it gets every core. The native BLAKE3 hashes ~6 GB/s a core: a
 * thread hashes faster than SQLite hands it blobs, so a pool that only hashes (status of a
 * full read, fsck) hashes in place with no worker at all, and a pool that stores (commit,
 * clone) starts one, which writes the pack files (or, in a clone, reads and checks the linked
 * files) while this thread reads the database (or writes the new one). Each worker is also a
 * V8 heap of its own: fewer of them keep a clone's and a commit's peak memory down.
 * TILESYNC_HASH_WORKERS=N overrides this (0 hashes in place; a storing pool needs at least 1).
 */
export function poolSize(mode: 'store' | 'hash'): number {
  const forced = Number(process.env.TILESYNC_HASH_WORKERS)
  if (process.env.TILESYNC_HASH_WORKERS && Number.isInteger(forced) && forced >= 0) return mode === 'store' ? Math.max(1, forced) : forced
  if (activeHashImplementation() === 'wasm') return Math.max(1, Math.min(os.availableParallelism(), 8))
  return mode === 'store' ? 1 : 0
}

/**
 * An ObjectWriter that hashes (and optionally stores) blobs on worker threads (see poolSize),
 * so reading the database, hashing and writing overlap. Buffers are transferred, not
 * copied, when they own their memory. With `packed`, stored blobs go into pack files
 * (bulk writes: a full commit, a clone), which become visible to other processes at close().
 * A hashing pool of no workers hashes in place.
 */
export class HashingPool implements ObjectWriter {
  private readonly workers: Worker[]
  private readonly pending = new Map<number, {resolve: (reply: Reply) => void; reject: (e: unknown) => void}>()
  private readonly load: number[]
  private seq = 0
  /** Set when a worker died: nothing more can be asked of the pool. */
  private broken: unknown = null
  private readonly packed: boolean
  /**
   * Blobs hashed on this thread (small ones, or every one with no worker) go into a pack of
   * this thread's in packed mode: 190,000 tiles of 1.5 KB were 190,000 files otherwise.
   */
  private inlineWriter: PackWriter | null = null
  private inlineLoose = 0
  private readonly inlineHere = new Set<string>()
  private packsLoaded: Promise<unknown> | null = null

  constructor(
    private readonly store: LocalObjectStore,
    private readonly mode: 'store' | 'hash',
    options: {packed?: boolean; size?: number} = {},
  ) {
    const size = mode === 'store' ? Math.max(1, options.size ?? poolSize(mode)) : options.size ?? poolSize(mode)
    this.packed = Boolean(options.packed) && mode === 'store'
    this.workers = Array.from({length: size}, () => new Worker(new URL('./hash-worker.js', import.meta.url), {
      workerData: {objectsDir: store.objectsDir, tmpDir: store.tmpDir, packed: Boolean(options.packed) && mode === 'store', durable: store.durable},
      execArgv: [],
    }))
    this.load = this.workers.map(() => 0)
    this.workers.forEach((w, i) => {
      w.on('message', (m: Reply) => {
        this.load[i]--
        const p = this.pending.get(m.seq)
        this.pending.delete(m.seq)
        if (!p) return
        if (m.error) {
          p.reject(diskError(Object.assign(new Error(m.error.message), {code: m.error.code})))
          return
        }
        if (m.at) this.store.notePacked(m.id!, m.at)
        else if (m.wrote) this.store.noteWritten(m.id!)
        if (m.wrote && m.bytes) this.store.keepVerifiedBytes(m.id!, Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength))
        p.resolve(m)
      })
      w.on('error', (e) => {
        this.broken = e
        for (const p of this.pending.values()) p.reject(e)
        this.pending.clear()
      })
    })
  }

  async put(bytes: Buffer, id?: string): Promise<string> {
    if (id || bytes.length < INLINE_BELOW || this.workers.length === 0) {
      return this.mode === 'store' ? this.storeInline(bytes, id ?? hashBytes(bytes)) : (id ?? hashBytes(bytes))
    }
    return this.dispatch(bytes)
  }

  /** Stores a blob hashed on this thread: loose, or (packed mode, after the first few) in this thread's pack. */
  private async storeInline(bytes: Buffer, id: string): Promise<string> {
    if (!this.packed) return this.store.put(bytes, id)
    if (this.inlineHere.has(id)) return id
    if (this.inlineLoose < LOOSE_FIRST) {
      this.inlineLoose++
      return this.store.put(bytes, id)
    }
    this.packsLoaded ??= this.store.packs.refreshIfChanged()
    await this.packsLoaded
    if (this.inlineHere.has(id) || this.store.packs.loadedEntry(id) || existsSync(this.store.pathOf(id))) return id
    this.inlineHere.add(id)
    this.inlineWriter ??= new PackWriter(this.store.packs.dir, this.store.tmpDir, {durable: this.store.durable})
    try {
      this.store.notePacked(id, this.inlineWriter.append(id, bytes))
    } catch (error) {
      throw diskError(error)
    }
    return id
  }

  /**
   * Stores bytes that should hash to `expected` (a download) and returns their actual id;
   * when the two differ nothing is written and the caller reports the corruption.
   */
  async putVerified(bytes: Buffer, expected: string): Promise<string> {
    if (bytes.length < INLINE_BELOW || this.workers.length === 0) {
      const actual = hashBytes(bytes)
      if (actual === expected && this.mode === 'store') await this.storeInline(bytes, actual)
      return actual
    }
    return this.dispatch(bytes, expected)
  }

  /**
   * Hard-links `source` into the store as `expected` after checking its bytes (on a worker:
   * reading and hashing stay off this thread). null: no link could be made; otherwise the id
   * the bytes really hash to (stored only when it is `expected`) and their size.
   */
  async link(source: string, expected: string): Promise<{id: string; size: number} | null> {
    const r = await this.ask(this.leastLoaded(), {link: source, expect: expected})
    return r.linked ? {id: r.id!, size: r.size!} : null
  }

  private async dispatch(bytes: Buffer, expect?: string): Promise<string> {
    const i = this.leastLoaded()
    const owns = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    const view = owns ? new Uint8Array(bytes.buffer) : new Uint8Array(bytes)
    // A download verified inside a trust window (a clone) comes back with its reply, for the
    // database writer: the packed copy was written past the page cache and would be read back
    // from the disk.
    const hand = expect !== undefined && this.mode === 'store' && this.store.keepsVerifiedBytes
    return (await this.ask(i, {bytes: view, store: this.mode === 'store', expect, hand}, [view.buffer as ArrayBuffer])).id!
  }

  private leastLoaded(): number {
    let i = 0
    for (let j = 1; j < this.load.length; j++) if (this.load[j] < this.load[i]) i = j
    return i
  }

  private ask(i: number, message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.broken) return Promise.reject(this.broken)
    const seq = this.seq++
    this.load[i]++
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(seq, {resolve, reject})
      this.workers[i].postMessage({seq, ...message}, transfer)
    })
  }

  /**
   * Stops the workers without finishing their packs (a download that failed): the packs have
   * no index, so they hold nothing, and gc removes their files once old.
   */
  async abandon(): Promise<void> {
    this.inlineWriter?.abandon()
    await Promise.all(this.workers.map((w) => w.terminate()))
  }

  /**
   * Finishes the workers' packs (each is flushed, then its index written) and stops the
   * workers. Until this returns, packed objects are readable only by this process.
   */
  async close(): Promise<void> {
    try {
      if (this.mode === 'store') {
        if (this.inlineWriter) for (const p of await this.inlineWriter.finish().catch((e: unknown) => Promise.reject(diskError(e)))) this.store.notePackFinished(p.name)
        const replies = await Promise.all(this.workers.map((_, i) => this.ask(i, {finish: true})))
        for (const r of replies) for (const p of r.packs ?? []) this.store.notePackFinished(p.name)
        await this.store.packs.refreshIfChanged()
      }
    } finally {
      await Promise.all(this.workers.map((w) => w.terminate()))
    }
  }
}
