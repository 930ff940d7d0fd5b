import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import pLimit from 'p-limit'

import {writeFileAtomic} from '../util/write-file-atomic.js'

/**
 * Derived images (thumbnails) keyed by the content id they were made from, so an
 * entry never goes stale: kept in memory (bounded by bytes) and on disk under
 * `.tilesync/cache/thumbs/<kind>/ab/cdef…`, and made at most once at a time per key.
 * A disk that cannot be written only costs the disk copy.
 */
export class ThumbnailCache {
  private readonly memory = new Map<string, Buffer>()
  private memoryBytes = 0
  private readonly inFlight = new Map<string, Promise<Buffer>>()
  private readonly knownDirs = new Set<string>()
  /** Image work runs on libuv's thread pool; a few at a time keeps a small machine usable. */
  readonly limit = pLimit(4)

  constructor(
    private readonly dir: string | null,
    private readonly tmpDir: string | null,
    private readonly memoryLimit = 96 * 1024 * 1024,
  ) {}

  fileOf(kind: string, id: string): string | null {
    return this.dir ? path.join(this.dir, kind, id.slice(0, 2), id.slice(2)) : null
  }

  /** A cached entry without making it (memory, then disk). */
  async peek(kind: string, id: string): Promise<Buffer | undefined> {
    const key = `${kind}/${id}`
    const hit = this.memory.get(key)
    if (hit) {
      // Refresh its place in the eviction order.
      this.memory.delete(key)
      this.memory.set(key, hit)
      return hit
    }
    const file = this.fileOf(kind, id)
    if (!file) return undefined
    try {
      const bytes = await fs.readFile(file)
      this.remember(key, bytes)
      return bytes
    } catch {
      return undefined
    }
  }

  /**
   * The entry for `kind`/`id`, made with `make` when not cached yet. `disk: false` keeps it
   * in memory only.
   */
  async get(kind: string, id: string, make: () => Promise<Buffer>, options: {disk?: boolean} = {}): Promise<Buffer> {
    const disk = options.disk ?? true
    const key = `${kind}/${id}`
    const pending = this.inFlight.get(key)
    if (pending) return pending
    const job = (async () => {
      const cached = disk ? await this.peek(kind, id) : this.memory.get(key)
      if (cached) return cached
      const bytes = await make()
      this.remember(key, bytes)
      if (disk) await this.persist(kind, id, bytes)
      return bytes
    })()
    this.inFlight.set(key, job)
    try {
      return await job
    } finally {
      this.inFlight.delete(key)
    }
  }

  private remember(key: string, bytes: Buffer): void {
    if (bytes.length > this.memoryLimit / 4) return
    const old = this.memory.get(key)
    if (old) {
      this.memory.delete(key)
      this.memoryBytes -= old.length
    }
    this.memory.set(key, bytes)
    this.memoryBytes += bytes.length
    for (const [k, v] of this.memory) {
      if (this.memoryBytes <= this.memoryLimit) break
      this.memory.delete(k)
      this.memoryBytes -= v.length
    }
  }

  private async persist(kind: string, id: string, bytes: Buffer): Promise<void> {
    const file = this.fileOf(kind, id)
    if (!file || !this.tmpDir) return
    try {
      for (const dir of [path.dirname(file), this.tmpDir]) {
        if (this.knownDirs.has(dir)) continue
        await fs.mkdir(dir, {recursive: true})
        this.knownDirs.add(dir)
      }
      await writeFileAtomic(this.tmpDir, file, bytes, false)
    } catch {
      // Read-only repository or full disk: the memory copy still serves.
    }
  }
}
