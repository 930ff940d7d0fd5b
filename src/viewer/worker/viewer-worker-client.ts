import {Worker} from 'node:worker_threads'

import {TilesyncError} from '../../core/errors.js'
import type {ApiReply} from '../viewer-api.js'
import {type CallMessage, deserializeError, type WorkerMessage} from './messages.js'

const WORKER_FILE = new URL('./viewer-worker.js', import.meta.url)

interface Pending {
  resolve(reply: ApiReply): void
  reject(error: Error): void
}

/**
 * The HTTP thread's handle on the viewer's worker thread: `call` sends a ViewerApi method and
 * its arguments and resolves with the answer. A worker that dies is started again on the next
 * call; `close` stops it at once, wherever it is in its work.
 */
export class ViewerWorkerClient {
  private worker?: Worker
  private starting?: Promise<Worker>
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private closed = false

  constructor(private readonly root: string, private readonly options: {concurrency?: number} = {}) {}

  async start(): Promise<void> {
    await this.ensureWorker()
  }

  async call(method: string, ...args: unknown[]): Promise<ApiReply> {
    const worker = await this.ensureWorker()
    const id = this.nextId++
    return new Promise<ApiReply>((resolve, reject) => {
      this.pending.set(id, {resolve, reject})
      worker.postMessage({id, method, args} satisfies CallMessage)
    })
  }

  async close(): Promise<void> {
    this.closed = true
    const worker = this.worker
    this.worker = undefined
    this.failAll(new TilesyncError('BAD_ARGUMENT', 'the server is stopping'))
    if (worker) await worker.terminate()
  }

  private ensureWorker(): Promise<Worker> {
    if (this.closed) return Promise.reject(new TilesyncError('BAD_ARGUMENT', 'the server is stopping'))
    if (this.worker) return Promise.resolve(this.worker)
    this.starting ??= new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(WORKER_FILE, {workerData: {root: this.root, concurrency: this.options.concurrency}})
      worker.on('message', (message: WorkerMessage) => {
        switch (message.kind) {
          case 'ready':
            this.worker = worker
            this.starting = undefined
            resolve(worker)
            return
          case 'fatal':
            this.starting = undefined
            reject(deserializeError(message.error))
            void worker.terminate()
            return
          case 'reply': {
            const p = this.pending.get(message.id)
            this.pending.delete(message.id)
            if ('json' in message) p?.resolve({json: message.json})
            else p?.resolve({bytes: Buffer.from(message.bytes.buffer, message.bytes.byteOffset, message.bytes.byteLength), type: message.type})
            return
          }
          case 'error': {
            const p = this.pending.get(message.id)
            this.pending.delete(message.id)
            p?.reject(deserializeError(message.error))
          }
        }
      })
      worker.on('error', (error) => {
        if (this.starting) {
          this.starting = undefined
          reject(error)
        }
        this.failAll(new Error(`the viewer's worker failed: ${error.message}`))
      })
      worker.on('exit', () => {
        if (this.worker === worker) this.worker = undefined
        this.failAll(new Error("the viewer's worker stopped"))
      })
    })
    return this.starting
  }

  private failAll(error: Error): void {
    for (const p of this.pending.values()) p.reject(error)
    this.pending.clear()
  }
}
