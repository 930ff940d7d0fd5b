import {TilesyncError} from '../core/errors.js'
import {type Backend, type ListedKey, TransientError, type Versioned} from './backend.js'

export interface RetryOptions {
  /** Tries per operation, the first included. Default TILESYNC_REMOTE_RETRIES, else 5. */
  attempts?: number
  /** First backoff; doubles each retry. */
  baseDelayMs?: number
  /** Ceiling of the exponential backoff. */
  maxDelayMs?: number
  /** Ceiling applied to a server's Retry-After. */
  maxRetryAfterMs?: number
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>
  /** Called before each wait, e.g. to log or to count. */
  onRetry?: (info: {op: string; key: string; attempt: number; delayMs: number; error: TransientError}) => void
}

export const DEFAULT_REMOTE_RETRIES = 5

/** TILESYNC_REMOTE_RETRIES (tries per request, at least 1), else 5. */
export function remoteRetries(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.TILESYNC_REMOTE_RETRIES)
  return Number.isInteger(v) && v >= 1 ? v : DEFAULT_REMOTE_RETRIES
}

/**
 * Retries what a backend reports as TransientError (timeouts, resets, 5xx, 429), with
 * exponential backoff and jitter, waiting at least what the server's Retry-After asked for
 * (capped). Any other error passes straight through. Wraps any Backend, as restic stacks its
 * retry decorator over every storage backend.
 */
export class RetryingBackend implements Backend {
  private readonly attempts: number
  private readonly baseDelayMs: number
  private readonly maxDelayMs: number
  private readonly maxRetryAfterMs: number
  private readonly sleep: (ms: number) => Promise<void>

  constructor(readonly inner: Backend, private readonly options: RetryOptions = {}) {
    this.attempts = Math.max(1, Math.floor(options.attempts ?? remoteRetries()))
    this.baseDelayMs = options.baseDelayMs ?? 250
    this.maxDelayMs = options.maxDelayMs ?? 10_000
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)))
  }

  get location(): string {
    return this.inner.location
  }

  /** The wait before try number `attempt + 1`. */
  delayFor(attempt: number, error: TransientError): number {
    const backoff = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1))
    const jittered = backoff / 2 + Math.random() * (backoff / 2)
    if (error.retryAfterMs === undefined) return Math.round(jittered)
    return Math.min(this.maxRetryAfterMs, Math.max(error.retryAfterMs, 0))
  }

  private async run<T>(op: string, key: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(attempt)
      } catch (error) {
        if (!(error instanceof TransientError)) throw error
        if (attempt >= this.attempts) {
          throw new TilesyncError('TRANSFER_FAILED', `${op} ${key || '(root)'} on ${this.location} failed after ${attempt} ${attempt === 1 ? 'try' : 'tries'}: ${error.message}`, {
            hint: 'the remote is unreachable or overloaded; try again later (TILESYNC_REMOTE_RETRIES and TILESYNC_REMOTE_TIMEOUT_MS raise the patience)',
            data: {op, key, attempts: attempt},
            cause: error,
          })
        }
        const delayMs = this.delayFor(attempt, error)
        this.options.onRetry?.({op, key, attempt, delayMs, error})
        await this.sleep(delayMs)
      }
    }
  }

  get(key: string): Promise<Buffer | null> {
    return this.run('get', key, () => this.inner.get(key))
  }

  getVersioned(key: string): Promise<Versioned | null> {
    return this.run('get', key, () => this.inner.getVersioned(key))
  }

  getRange(key: string, start: number, length: number): Promise<Buffer | null> {
    const inner = this.inner
    if (!inner.getRange) return this.get(key).then((b) => (b === null ? null : b.subarray(start, start + length)))
    return this.run('get', key, () => inner.getRange!(key, start, length))
  }

  put(key: string, bytes: Buffer): Promise<void> {
    return this.run('put', key, () => this.inner.put(key, bytes))
  }

  /**
   * A failed compare-and-swap may still have landed (the answer was lost, not the write).
   * Before trying again, look: our bytes already there means we won; a version other than
   * `expected` means someone else moved the key and the swap is lost.
   */
  putIfMatch(key: string, bytes: Buffer, expected: string | null): Promise<boolean> {
    return this.run('put', key, async (attempt) => {
      if (attempt > 1) {
        const now = await this.inner.getVersioned(key)
        if (now && now.bytes.equals(bytes)) return true
        if ((now?.etag ?? null) !== expected) return false
      }
      return this.inner.putIfMatch(key, bytes, expected)
    })
  }

  /** A listing interrupted half-way is started again, skipping keys already given out. */
  async *list(prefix: string): AsyncIterable<ListedKey> {
    const given = new Set<string>()
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const k of this.inner.list(prefix)) {
          if (given.has(k.key)) continue
          given.add(k.key)
          yield k
        }
        return
      } catch (error) {
        if (!(error instanceof TransientError)) throw error
        if (attempt >= this.attempts) {
          throw new TilesyncError('TRANSFER_FAILED', `list ${prefix || '(root)'} on ${this.location} failed after ${attempt} ${attempt === 1 ? 'try' : 'tries'}: ${error.message}`, {
            hint: 'the remote is unreachable or overloaded; try again later (TILESYNC_REMOTE_RETRIES and TILESYNC_REMOTE_TIMEOUT_MS raise the patience)',
            data: {op: 'list', key: prefix, attempts: attempt},
            cause: error,
          })
        }
        const delayMs = this.delayFor(attempt, error)
        this.options.onRetry?.({op: 'list', key: prefix, attempt, delayMs, error})
        await this.sleep(delayMs)
      }
    }
  }

  delete(key: string): Promise<void> {
    return this.run('delete', key, () => this.inner.delete(key))
  }

  async deleteIfMatch(key: string, expected: string): Promise<boolean> {
    const inner = this.inner
    if (!inner.deleteIfMatch) {
      // No conditional delete there: read the version, then delete (see Backend.deleteIfMatch).
      if ((await this.getVersioned(key))?.etag !== expected) return false
      await this.delete(key)
      return true
    }
    return this.run('delete', key, () => inner.deleteIfMatch!(key, expected))
  }

  async deleteMany(keys: string[]): Promise<void> {
    const inner = this.inner
    if (!inner.deleteMany) {
      for (const k of keys) await this.delete(k)
      return
    }
    // Deleting an absent key is no error, so a batch whose answer was lost is simply sent again.
    await this.run('delete', `${keys.length} keys from ${keys[0] ?? ''}`, () => inner.deleteMany!(keys))
  }

  async copyFrom(source: Backend, key: string): Promise<boolean> {
    const inner = this.inner
    if (!inner.copyFrom) return false
    return this.run('copy', key, () => inner.copyFrom!(unwrapBackend(source), key))
  }

  async flush(): Promise<void> {
    await this.inner.flush?.()
  }

  async close(): Promise<void> {
    await this.inner.close?.()
  }
}

/** The backend under any stack of decorators that expose what they wrap as `inner`. */
export function unwrapBackend(backend: Backend): Backend {
  let b = backend
  while ((b as {inner?: Backend}).inner) b = (b as {inner?: Backend}).inner!
  return b
}
