import {hashBytes} from '../core/hash.js'
import type {ObjectReader, ObjectStore, ObjectWriter} from './object-store.js'

/**
 * Keeps new objects in memory and reads through to a base store. `status` and `diff`
 * build a snapshot of the working database this way without writing anything to disk.
 */
export class OverlayStore implements ObjectStore {
  private readonly added = new Map<string, Buffer>()

  constructor(private readonly base: ObjectReader) {}

  async has(id: string): Promise<boolean> {
    return this.added.has(id) || this.base.has(id)
  }

  async get(id: string): Promise<Buffer> {
    return this.added.get(id) ?? this.base.get(id)
  }

  async put(bytes: Buffer, id?: string): Promise<string> {
    const objectId = id ?? hashBytes(bytes)
    this.added.set(objectId, bytes)
    return objectId
  }

  /**
   * Stores what was added here in `target`: a merge builds its tree in memory and keeps it
   * only once it commits, so a refused or conflicted one leaves nothing behind.
   */
  async copyTo(target: ObjectWriter): Promise<number> {
    const entries = [...this.added]
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < entries.length) {
        const [id, bytes] = entries[next++]
        await target.put(bytes, id)
      }
    }
    await Promise.all(Array.from({length: Math.min(16, entries.length)}, worker))
    return entries.length
  }
}

/** Computes ids without keeping bytes: for blobs during a read-only scan. */
export const hashOnlyWriter: ObjectWriter = {
  async put(bytes: Buffer, id?: string): Promise<string> {
    return id ?? hashBytes(bytes)
  },
}
