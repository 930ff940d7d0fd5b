import {hashBytes} from '../core/hash.js'

/**
 * Pack files hold many objects back to back in one file, so a bulk write (a first commit, a
 * clone) creates a handful of files instead of one per blob: creating thousands of inodes
 * costs more kernel time than writing their bytes.
 *
 * `<name>.pack`: the magic, then one record per object: its 32-byte id, its length (4 bytes,
 *               little-endian), its bytes. The records alone can rebuild a lost index.
 * `<name>.idx`:  the magic, a version, the count, then one entry per object sorted by id
 *               (32-byte id, 8-byte offset, 4-byte length, little-endian), then a BLAKE3 of
 *               everything before it. The index is written last and renamed into place, so a
 *               pack without an index is an unfinished write and holds no objects.
 */
export const PACK_MAGIC = Buffer.from('TSPK\u0000\u0000\u0000\u0001', 'latin1')
const INDEX_MAGIC = Buffer.from('TSPX', 'latin1')
const INDEX_VERSION = 1
const HEADER = 12
const ENTRY = 44
const TRAILER = 32

/** Bytes before an object's own bytes in its record. */
export const RECORD_HEADER = 36

export function recordHeader(id: string, length: number): Buffer {
  const header = Buffer.alloc(RECORD_HEADER)
  header.write(id, 0, 32, 'hex')
  header.writeUInt32LE(length, 32)
  return header
}

export interface PackEntry {
  id: string
  offset: number
  length: number
}

export function encodeIndex(entries: PackEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const body = Buffer.alloc(HEADER + sorted.length * ENTRY)
  INDEX_MAGIC.copy(body, 0)
  body.writeUInt32LE(INDEX_VERSION, 4)
  body.writeUInt32LE(sorted.length, 8)
  sorted.forEach((e, i) => {
    const at = HEADER + i * ENTRY
    body.write(e.id, at, 32, 'hex')
    body.writeBigUInt64LE(BigInt(e.offset), at + 32)
    body.writeUInt32LE(e.length, at + 40)
  })
  return Buffer.concat([body, Buffer.from(hashBytes(body), 'hex')])
}

/** Decodes an index; throws a plain Error naming what is wrong when it is damaged. */
export function decodeIndex(bytes: Buffer): PackEntry[] {
  if (bytes.length < HEADER + TRAILER || !bytes.subarray(0, 4).equals(INDEX_MAGIC)) throw new Error('not a pack index')
  const body = bytes.subarray(0, bytes.length - TRAILER)
  if (hashBytes(body) !== bytes.subarray(bytes.length - TRAILER).toString('hex')) throw new Error('pack index checksum mismatch')
  if (body.readUInt32LE(4) !== INDEX_VERSION) throw new Error(`unsupported pack index version ${body.readUInt32LE(4)}`)
  const count = body.readUInt32LE(8)
  if (body.length !== HEADER + count * ENTRY) throw new Error('pack index length does not match its count')
  const entries: PackEntry[] = []
  for (let i = 0; i < count; i++) {
    const at = HEADER + i * ENTRY
    // Two 32-bit halves rather than a BigInt: this loop runs for every packed object each
    // time a process first looks into its packs.
    entries.push({
      id: body.toString('hex', at, at + 32),
      offset: body.readUInt32LE(at + 32) + body.readUInt32LE(at + 36) * 0x1_0000_0000,
      length: body.readUInt32LE(at + 40),
    })
  }
  return entries
}

/** Pack names are random: a pack is named before its contents are known. */
export const PACK_NAME = /^pack-[0-9a-f]{24}$/

