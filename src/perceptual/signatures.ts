import * as os from 'node:os'

import pLimit from 'p-limit'

import {signImage} from './image-signature.js'
import {SignatureFile, type StoredSignature} from './signature-file.js'
import {SignatureIndex} from './signature-index.js'

export interface EnsureStats {
  /** Distinct objects asked for. */
  objects: number
  /** Found in the cache. */
  cached: number
  /** Decoded now (and added to the cache). */
  computed: number
  /** Of those asked for, how many are not decodable images (cached as such). */
  notImages: number
  /** Whose bytes could not be read (missing object, row changed meanwhile): not cached, left out. */
  unreadable: number
}

export interface EnsureOptions {
  /** Images decoded at once; default the number of cores. */
  concurrency?: number
  /** Called with the number of images to decode, before the first (for a progress bar). */
  onStart?: (toDecode: number) => void
  /** Called once per image decoded. */
  onDecoded?: () => void
  /** Stops starting new decodes; what was computed so far is kept. */
  signal?: AbortSignal
}

/** How many new signatures are appended together: a crash or a stop loses at most this many. */
const FLUSH_EVERY = 256

/**
 * Signatures of image objects, cached by object id in `.tilesync/cache/perceptual/`: what is
 * cached is read once at open; what is missing is decoded on demand, on every core, and
 * appended to the cache as it goes. `decoded` counts this process's decodes.
 */
export class Signatures {
  readonly index = new SignatureIndex()
  decoded = 0
  private readonly file: SignatureFile
  private pending: Array<{id: string; signature: StoredSignature}> = []
  private writable = true

  constructor(cacheFile: string) {
    this.file = new SignatureFile(cacheFile)
    this.refresh()
  }

  /** Picks up what other processes appended since (a long-running server does this before each batch). */
  refresh(): void {
    this.file.readNew(this.index)
  }

  /**
   * Signs the objects `ids` that are not signed yet, getting the bytes of `ids[i]` from
   * `read(i)` (object store, working database). Returns, per id in order, its slot in `index`
   * (-1 when its bytes could not be read), so callers need no second lookup.
   */
  async ensure(ids: readonly string[], read: (i: number) => Promise<Buffer>, options: EnsureOptions = {}): Promise<{stats: EnsureStats; slots: Int32Array}> {
    const stats: EnsureStats = {objects: 0, cached: 0, computed: 0, notImages: 0, unreadable: 0}
    const slots = new Int32Array(ids.length).fill(-1)
    const seen = new Uint8Array(this.index.size)
    const missing = new Map<string, number[]>()
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]
      const slot = this.index.slotOf(id)
      if (slot !== undefined) {
        slots[i] = slot
        if (seen[slot]) continue
        seen[slot] = 1
        stats.objects++
        stats.cached++
        if (!this.index.isImage(slot)) stats.notImages++
        continue
      }
      const at = missing.get(id)
      if (at) at.push(i)
      else {
        missing.set(id, [i])
        stats.objects++
      }
    }
    if (missing.size === 0) return {stats, slots}
    options.onStart?.(missing.size)
    const limit = pLimit(options.concurrency ?? os.availableParallelism())
    try {
      await Promise.all([...missing].map(([id, at]) => limit(async () => {
        if (options.signal?.aborted) return
        let bytes: Buffer
        try {
          bytes = await read(at[0])
        } catch {
          stats.unreadable++
          return
        }
        const signature = await signImage(bytes)
        this.decoded++
        stats.computed++
        if (!signature) stats.notImages++
        const slot = this.index.set(id, signature)
        for (const i of at) slots[i] = slot
        this.pending.push({id, signature})
        if (this.pending.length >= FLUSH_EVERY) this.flush()
        options.onDecoded?.()
      })))
    } finally {
      this.flush()
    }
    return {stats, slots}
  }

  /** Appends what is new to the cache file; a repository that cannot be written keeps it in memory only. */
  flush(): void {
    const batch = this.pending
    this.pending = []
    if (!this.writable || batch.length === 0) return
    try {
      this.file.append(batch)
    } catch {
      this.writable = false
    }
  }
}
