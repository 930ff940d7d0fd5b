import * as os from 'node:os'

import pLimit from 'p-limit'

import {signImage} from './image-signature.js'
import {SignatureFile, type StoredSignature} from './signature-file.js'
import {SignatureIndex} from './signature-index.js'

/** One image to sign: its object id and how to get its bytes (object store, working database). */
export interface SignatureSource {
  id: string
  read: () => Promise<Buffer>
}

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

  async ensure(sources: Iterable<SignatureSource>, options: EnsureOptions = {}): Promise<EnsureStats> {
    const stats: EnsureStats = {objects: 0, cached: 0, computed: 0, notImages: 0, unreadable: 0}
    const missing: SignatureSource[] = []
    const seen = new Set<string>()
    for (const s of sources) {
      if (seen.has(s.id)) continue
      seen.add(s.id)
      stats.objects++
      const slot = this.index.slotOf(s.id)
      if (slot === undefined) missing.push(s)
      else {
        stats.cached++
        if (!this.index.isImage(slot)) stats.notImages++
      }
    }
    if (missing.length === 0) return stats
    options.onStart?.(missing.length)
    const limit = pLimit(options.concurrency ?? os.availableParallelism())
    try {
      await Promise.all(missing.map((s) => limit(async () => {
        if (options.signal?.aborted) return
        let bytes: Buffer
        try {
          bytes = await s.read()
        } catch {
          stats.unreadable++
          return
        }
        const signature = await signImage(bytes)
        this.decoded++
        stats.computed++
        if (!signature) stats.notImages++
        this.index.set(s.id, signature)
        this.pending.push({id: s.id, signature})
        if (this.pending.length >= FLUSH_EVERY) this.flush()
        options.onDecoded?.()
      })))
    } finally {
      this.flush()
    }
    return stats
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
