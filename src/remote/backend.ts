/**
 * Storage behind a remote: a flat namespace of keys holding bytes, as restic's backends
 * are. The repository layer above decides what keys mean (objects, refs); backends never
 * build paths themselves. Every backend passes the shared conformance suite in
 * test/support/backend-conformance.ts; the transports built on them pass the one in
 * test/support/transport-conformance.ts.
 */
export interface Versioned {
  bytes: Buffer
  /** Opaque version tag used for compare-and-swap (an S3 ETag, a content hash on disk). */
  etag: string
}

export interface ListedKey {
  key: string
  size: number
  lastModified: number
}

export interface Backend {
  /** Where it points, for messages. Never contains credentials. */
  readonly location: string

  /** The bytes at `key`, or null when absent. Callers verify content; backends just move bytes. */
  get(key: string): Promise<Buffer | null>

  /** Like get, with a version tag for a later `putIfMatch`. */
  getVersioned(key: string): Promise<Versioned | null>

  /**
   * Optional: `length` bytes of `key` from byte `start` (an HTTP range request), or null when
   * the key is absent. Fewer bytes than asked means the stored value is shorter. Without it,
   * readers of packs get the whole key and cut it themselves.
   */
  getRange?(key: string, start: number, length: number): Promise<Buffer | null>

  /** Stores bytes at `key`, replacing what was there. Whole or not at all. */
  put(key: string, bytes: Buffer): Promise<void>

  /**
   * Compare-and-swap: writes only if the key still has version `expected` (null: only if
   * the key does not exist). Returns false, writing nothing, when someone else got there first.
   */
  putIfMatch(key: string, bytes: Buffer, expected: string | null): Promise<boolean>

  /** Keys under `prefix`, in any order. */
  list(prefix: string): AsyncIterable<ListedKey>

  delete(key: string): Promise<void>

  /**
   * Optional: deletes only if the key still has version `expected`; false, deleting nothing,
   * when it changed. Without it, a branch is deleted after a read of its version (a window
   * in which another push can land and be deleted with it).
   */
  deleteIfMatch?(key: string, expected: string): Promise<boolean>

  /**
   * Optional: deletes many keys in few requests (S3 DeleteObjects, 1,000 a request); keys
   * already absent are no error. Without it, each key is one delete.
   */
  deleteMany?(keys: string[]): Promise<void>

  /**
   * Optional: copy `key` from `source` without the bytes passing through this machine
   * (S3 CopyObject). Returns false when the two backends cannot do that.
   */
  copyFrom?(source: Backend, key: string): Promise<boolean>

  /**
   * Optional: the local file that holds `key`, for a backend that is a directory on this
   * machine (a clone hard-links objects from it, as git does for a local clone).
   */
  localFile?(key: string): string

  /**
   * Optional: make every put so far durable. Called once before a branch moves, so backends
   * that can batch durability (a directory: one syncfs) need not flush each object.
   */
  flush?(): Promise<void>

  /**
   * Optional: after keys were deleted, removes the directories left empty under `prefixes`
   * (and the root itself when nothing is left in it), for a backend that is a directory.
   */
  removeEmptyDirectories?(prefixes: string[]): Promise<void>

  close?(): Promise<void>
}

/** A failure worth retrying (timeouts, resets, 5xx, 429); `retryAfterMs` honours the server's Retry-After. */
export class TransientError extends Error {
  constructor(message: string, readonly retryAfterMs?: number, options?: {cause?: unknown}) {
    super(message, options)
    this.name = 'TransientError'
  }
}
