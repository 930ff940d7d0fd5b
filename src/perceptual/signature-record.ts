import {HASH_WORDS} from './dhash.js'
import type {ImageSignature} from './image-signature.js'

/**
 * One cached signature as 80 bytes:
 *
 *   0..31  object id (BLAKE3-256, binary)      64..71  width, height (uint32 LE)
 *   32..47 perceptual hash (4 x uint32 LE)     72      kind: 1 image, 2 not an image
 *   48..63 pixel digest (XXH3-128)             73..75  zero
 *                                              76..79  checksum of bytes 0..75 (uint32 LE)
 *
 * The checksum only has to catch torn writes and damaged stretches, not an adversary: a
 * multiply-xor over the 19 little-endian words with murmur3's finaliser, which plain
 * JavaScript computes for 100,000 records in a few milliseconds (word-wise when aligned).
 */
export const RECORD_BYTES = 80
const CHECKED_BYTES = 76
export const KIND_IMAGE = 1
export const KIND_NOT_IMAGE = 2

const WORDS = CHECKED_BYTES / 4
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

function mix(h: number, w: number): number {
  return Math.imul(h ^ w, 0x01000193) ^ (h >>> 15)
}

function finish(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

// A word view of the buffer last checked: a load checks every record of one buffer in turn.
let viewed: Buffer | undefined
let view: Uint32Array | undefined

function checksum(buf: Buffer, o: number): number {
  let h = 0x811c9dc5
  if (LITTLE_ENDIAN && buf.byteOffset % 4 === 0 && o % 4 === 0) {
    if (viewed !== buf) {
      viewed = buf
      view = new Uint32Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 4))
    }
    const words = view!
    const w0 = o / 4
    for (let i = 0; i < WORDS; i++) h = mix(h, words[w0 + i])
  } else {
    for (let i = 0; i < WORDS; i++) h = mix(h, buf.readUInt32LE(o + i * 4))
  }
  return finish(h)
}

export function encodeRecord(buf: Buffer, o: number, id: string, signature: ImageSignature | null): void {
  buf.fill(0, o, o + RECORD_BYTES)
  if (buf.write(id, o, 32, 'hex') !== 32) throw new Error(`not an object id: ${id}`)
  if (signature) {
    for (let i = 0; i < HASH_WORDS; i++) buf.writeUInt32LE(signature.hash[i] >>> 0, o + 32 + i * 4)
    signature.pixels.copy(buf, o + 48, 0, 16)
    buf.writeUInt32LE(signature.width, o + 64)
    buf.writeUInt32LE(signature.height, o + 68)
  }
  buf[o + 72] = signature ? KIND_IMAGE : KIND_NOT_IMAGE
  buf.writeUInt32LE(checksum(buf, o), o + CHECKED_BYTES)
}

/** Whether the 80 bytes at `o` are a whole, undamaged record. */
export function recordChecks(buf: Buffer, o: number): boolean {
  const kind = buf[o + 72]
  if ((kind !== KIND_IMAGE && kind !== KIND_NOT_IMAGE) || buf[o + 73] !== 0 || buf[o + 74] !== 0 || buf[o + 75] !== 0) return false
  return checksum(buf, o) === buf.readUInt32LE(o + CHECKED_BYTES)
}
