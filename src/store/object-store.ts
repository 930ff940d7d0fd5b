/**
 * The contract every place that holds objects meets: local store, in-memory overlay,
 * remote cache. Ids are BLAKE3-256 hex of the bytes.
 */
export interface ObjectReader {
  /** The object's bytes, verified against `id`; throws OBJECT_MISSING / OBJECT_CORRUPT. */
  get(id: string): Promise<Buffer>
  has(id: string): Promise<boolean>
}

export interface ObjectWriter {
  /** Stores `bytes` (idempotently) and returns their id. `id` may be passed when already known. */
  put(bytes: Buffer, id?: string): Promise<string>
}

export type ObjectStore = ObjectReader & ObjectWriter
