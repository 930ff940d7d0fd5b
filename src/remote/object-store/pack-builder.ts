import {hashBytes} from '../../core/hash.js'
import {encodeIndex, PACK_MAGIC, type PackEntry, RECORD_HEADER, recordHeader} from '../../store/pack-format.js'

/** What a remote pack holds: tile images (data), or commits and trees (fetched whole, first). */
export type PackKind = 'data' | 'tree'

export interface BuiltPack {
  /** `<d|t>-<BLAKE3 of the index>`: the index verifies against its own name. */
  name: string
  kind: PackKind
  pack: Buffer
  index: Buffer
  ids: string[]
  /** The objects' own bytes (the pack less its headers). */
  payload: number
}

/** The remote name of a pack whose index is `index`. */
export function packNameOf(kind: PackKind, index: Buffer): string {
  return `${kind === 'tree' ? 't' : 'd'}-${hashBytes(index)}`
}

export const REMOTE_PACK_NAME = /^[dt]-[0-9a-f]{64}$/

export function kindOfPack(name: string): PackKind {
  return name.startsWith('t-') ? 'tree' : 'data'
}

/**
 * Builds one pack in memory, in the local pack format (store/pack-format.ts): the magic, then
 * per object its id, length and bytes; its index sorted by id with a BLAKE3 trailer. A remote
 * pack is a local pack byte for byte.
 */
export class PackBuilder {
  private chunks: Buffer[] = [PACK_MAGIC]
  private offset = PACK_MAGIC.length
  private entries: PackEntry[] = []
  private payload = 0

  constructor(readonly kind: PackKind) {}

  get bytes(): number {
    return this.offset
  }

  get count(): number {
    return this.entries.length
  }

  append(id: string, bytes: Buffer): void {
    this.chunks.push(recordHeader(id, bytes.length), bytes)
    this.entries.push({id, offset: this.offset + RECORD_HEADER, length: bytes.length})
    this.offset += RECORD_HEADER + bytes.length
    this.payload += bytes.length
  }

  finish(): BuiltPack {
    const index = encodeIndex(this.entries)
    const built = {name: packNameOf(this.kind, index), kind: this.kind, pack: Buffer.concat(this.chunks, this.offset), index, ids: this.entries.map((e) => e.id), payload: this.payload}
    this.chunks = []
    return built
  }
}
