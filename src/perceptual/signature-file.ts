import {xxh32} from '@node-rs/xxhash'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {HASH_WORDS} from './dhash.js'
import type {ImageSignature} from './image-signature.js'
import type {SignatureIndex} from './signature-index.js'

/**
 * The on-disk cache of image signatures: one append-only file of fixed 80-byte records,
 *
 *   0..31  object id (BLAKE3-256, binary)      64..71  width, height (uint32 LE)
 *   32..47 perceptual hash (4 x uint32 LE)     72      kind: 1 image, 2 not an image
 *   48..63 pixel digest (XXH3-128)             73..75  zero
 *                                              76..79  XXH32 of bytes 0..75
 *
 * An object's signature never changes, so records are only ever added. Appends are single
 * O_APPEND writes of whole records, so two processes (serve warming, a `similar` run) can add
 * at once. A crash can leave a torn record, and a power loss a zero-filled stretch: a record
 * whose checksum fails is skipped by sliding one byte until records check again, so the damage
 * costs only the entries in it (computed again when next needed). 100,000 images take 8 MB
 * and load in one read.
 */
export const RECORD_BYTES = 80
const CHECKED_BYTES = 76
const SEED = 0x74737367
const KIND_IMAGE = 1
const KIND_NOT_IMAGE = 2

export type StoredSignature = ImageSignature | null

export interface LoadStats {
  records: number
  /** Bytes skipped because they did not check (torn or damaged records). */
  damagedBytes: number
}

export class SignatureFile {
  /** Bytes of the file already read: everything before this point has been parsed. */
  private consumed = 0

  constructor(readonly file: string) {}

  /**
   * Reads the records added since the last call (all of them the first time) into `into`.
   * A partial record at the end (another process mid-append) is left for the next call.
   */
  readNew(into: SignatureIndex): LoadStats {
    let fd: number
    try {
      fd = fs.openSync(this.file, 'r')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {records: 0, damagedBytes: 0}
      throw error
    }
    let buf: Buffer
    try {
      const size = fs.fstatSync(fd).size
      if (size < this.consumed) this.consumed = 0 // replaced by a shorter file: read it all again
      buf = Buffer.allocUnsafe(size - this.consumed)
      let at = 0
      while (at < buf.length) {
        const n = fs.readSync(fd, buf, at, buf.length - at, this.consumed + at)
        if (n === 0) break
        at += n
      }
      buf = buf.subarray(0, at)
    } finally {
      fs.closeSync(fd)
    }
    const stats: LoadStats = {records: 0, damagedBytes: 0}
    let o = 0
    let lastGood = 0
    while (o + RECORD_BYTES <= buf.length) {
      const kind = checkedKind(buf, o)
      if (kind === undefined) {
        o++
        continue
      }
      stats.damagedBytes += o - lastGood
      into.setFromRecord(buf.toString('hex', o, o + 32), buf, o, kind === KIND_IMAGE)
      stats.records++
      o += RECORD_BYTES
      lastGood = o
    }
    this.consumed += lastGood
    return stats
  }

  /** Appends records in one write. Creating the directory is the only other thing it does. */
  append(entries: Array<{id: string; signature: StoredSignature}>): void {
    if (entries.length === 0) return
    const buf = Buffer.alloc(entries.length * RECORD_BYTES)
    entries.forEach((e, i) => encodeRecord(buf, i * RECORD_BYTES, e.id, e.signature))
    fs.mkdirSync(path.dirname(this.file), {recursive: true})
    const fd = fs.openSync(this.file, 'a')
    try {
      let at = 0
      while (at < buf.length) at += fs.writeSync(fd, buf, at, buf.length - at)
    } finally {
      fs.closeSync(fd)
    }
  }
}

export function encodeRecord(buf: Buffer, o: number, id: string, signature: StoredSignature): void {
  buf.fill(0, o, o + RECORD_BYTES)
  if (buf.write(id, o, 32, 'hex') !== 32) throw new Error(`not an object id: ${id}`)
  if (signature) {
    for (let i = 0; i < HASH_WORDS; i++) buf.writeUInt32LE(signature.hash[i] >>> 0, o + 32 + i * 4)
    signature.pixels.copy(buf, o + 48, 0, 16)
    buf.writeUInt32LE(signature.width, o + 64)
    buf.writeUInt32LE(signature.height, o + 68)
  }
  buf[o + 72] = signature ? KIND_IMAGE : KIND_NOT_IMAGE
  buf.writeUInt32LE(xxh32(buf.subarray(o, o + CHECKED_BYTES), SEED) >>> 0, o + CHECKED_BYTES)
}

/** The kind byte of the record at `o`, or undefined when the record does not check. */
function checkedKind(buf: Buffer, o: number): number | undefined {
  const kind = buf[o + 72]
  if ((kind !== KIND_IMAGE && kind !== KIND_NOT_IMAGE) || buf[o + 73] !== 0 || buf[o + 74] !== 0 || buf[o + 75] !== 0) return undefined
  if ((xxh32(buf.subarray(o, o + CHECKED_BYTES), SEED) >>> 0) !== buf.readUInt32LE(o + CHECKED_BYTES)) return undefined
  return kind
}
