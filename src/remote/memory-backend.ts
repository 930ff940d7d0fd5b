import {createHash} from 'node:crypto'

import type {Backend, ListedKey, Versioned} from './backend.js'

interface Entry {
  bytes: Buffer
  etag: string
  lastModified: number
}

/**
 * A backend held in this process's memory: for tests, which can look at every key, count
 * writes, and make a chosen write fail (as a flaky network would) to interrupt a push.
 * Compare-and-swap is atomic because nothing awaits between the check and the write.
 */
export class MemoryBackend implements Backend {
  readonly keys = new Map<string, Entry>()
  /** Every put and putIfMatch that stored bytes, in order (keys). */
  readonly writes: string[] = []
  /** Puts of a key for which this returns an Error throw it instead of storing. */
  failPut: ((key: string) => Error | null) | null = null

  constructor(readonly location = 'memory://') {}

  async get(key: string): Promise<Buffer | null> {
    const e = this.keys.get(key)
    return e ? Buffer.from(e.bytes) : null
  }

  /** Range reads asked for, in order (key, start, length): tests count them. */
  readonly ranges: Array<{key: string; start: number; length: number}> = []

  async getRange(key: string, start: number, length: number): Promise<Buffer | null> {
    const e = this.keys.get(key)
    if (!e) return null
    this.ranges.push({key, start, length})
    return Buffer.from(e.bytes.subarray(start, start + length))
  }

  async getVersioned(key: string): Promise<Versioned | null> {
    const e = this.keys.get(key)
    return e ? {bytes: Buffer.from(e.bytes), etag: e.etag} : null
  }

  async put(key: string, bytes: Buffer): Promise<void> {
    await Promise.resolve()
    const failure = this.failPut?.(key)
    if (failure) throw failure
    this.store(key, bytes)
  }

  async putIfMatch(key: string, bytes: Buffer, expected: string | null): Promise<boolean> {
    const failure = this.failPut?.(key)
    if (failure) throw failure
    if ((this.keys.get(key)?.etag ?? null) !== expected) return false
    this.store(key, bytes)
    return true
  }

  async deleteIfMatch(key: string, expected: string): Promise<boolean> {
    if (this.keys.get(key)?.etag !== expected) return false
    this.keys.delete(key)
    return true
  }

  async *list(prefix: string): AsyncIterable<ListedKey> {
    for (const [key, e] of [...this.keys]) {
      if (key.startsWith(prefix)) yield {key, size: e.bytes.length, lastModified: e.lastModified}
    }
  }

  async delete(key: string): Promise<void> {
    this.keys.delete(key)
  }

  private store(key: string, bytes: Buffer): void {
    // The version is content and time: rewriting the same bytes still moves it, as an S3 ETag
    // of a new upload would not; compare-and-swap only needs that a change is seen.
    const etag = createHash('sha256').update(bytes).update(String(process.hrtime.bigint())).digest('hex')
    this.keys.set(key, {bytes: Buffer.from(bytes), etag, lastModified: Date.now()})
    this.writes.push(key)
  }
}
