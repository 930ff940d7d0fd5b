import * as os from 'node:os'
import {Worker} from 'node:worker_threads'

import {TilesyncError} from '../core/errors.js'
import {hashBytes} from '../core/hash.js'
import type {LocalObjectStore} from './local-object-store.js'
import type {ObjectWriter} from './object-store.js'

/** Blobs smaller than this are hashed in place: a message round trip would cost more. */
const INLINE_BELOW = 16 * 1024

/**
 * An ObjectWriter that hashes (and optionally stores) blobs on worker threads, one per
 * core, so reading the database, hashing and writing overlap. Buffers are transferred, not
 * copied, when they own their memory.
 */
export class HashingPool implements ObjectWriter {
  private readonly workers: Worker[]
  private readonly pending = new Map<number, {resolve: (id: string) => void; reject: (e: unknown) => void}>()
  private readonly load: number[]
  private seq = 0

  constructor(private readonly store: LocalObjectStore, private readonly mode: 'store' | 'hash', size = Math.max(1, Math.min(os.availableParallelism(), 8))) {
    this.workers = Array.from({length: size}, () => new Worker(new URL('./hash-worker.js', import.meta.url), {
      workerData: {objectsDir: store.objectsDir, tmpDir: store.tmpDir},
      execArgv: [],
    }))
    this.load = this.workers.map(() => 0)
    this.workers.forEach((w, i) => {
      w.on('message', (m: {seq: number; id?: string; wrote?: boolean; error?: {message: string; code?: string}}) => {
        this.load[i]--
        const p = this.pending.get(m.seq)
        this.pending.delete(m.seq)
        if (!p) return
        if (m.error) {
          p.reject(m.error.code === 'ENOSPC' || m.error.code === 'EDQUOT'
            ? new TilesyncError('DISK_FULL', 'no space left on the disk while writing objects', {hint: 'free some disk space and run the command again; nothing was changed'})
            : new Error(m.error.message))
          return
        }
        if (m.wrote) this.store.noteWritten(m.id!)
        p.resolve(m.id!)
      })
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e)
        this.pending.clear()
      })
    })
  }

  async put(bytes: Buffer, id?: string): Promise<string> {
    if (id || bytes.length < INLINE_BELOW) {
      return this.mode === 'store' ? this.store.put(bytes, id) : (id ?? hashBytes(bytes))
    }
    return this.dispatch(bytes)
  }

  /**
   * Stores bytes that should hash to `expected` (a download) and returns their actual id;
   * when the two differ nothing is written and the caller reports the corruption.
   */
  async putVerified(bytes: Buffer, expected: string): Promise<string> {
    if (bytes.length < INLINE_BELOW) {
      const actual = hashBytes(bytes)
      if (actual === expected && this.mode === 'store') await this.store.put(bytes, actual)
      return actual
    }
    return this.dispatch(bytes, expected)
  }

  private dispatch(bytes: Buffer, expect?: string): Promise<string> {
    const seq = this.seq++
    let i = 0
    for (let j = 1; j < this.load.length; j++) if (this.load[j] < this.load[i]) i = j
    this.load[i]++
    const owns = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    const view = owns ? new Uint8Array(bytes.buffer) : new Uint8Array(bytes)
    return new Promise<string>((resolve, reject) => {
      this.pending.set(seq, {resolve, reject})
      this.workers[i].postMessage({seq, bytes: view, store: this.mode === 'store', expect}, [view.buffer as ArrayBuffer])
    })
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}
