import {HASH_WORDS, hammingDistance} from './dhash.js'
import type {ImageSignature} from './image-signature.js'
import {encodeRecord, RECORD_BYTES} from './signature-record.js'

/**
 * Signatures by object id, packed: every slot's cache record (see signature-record.ts) in one
 * buffer, its hash words in one Uint32Array, and an open-addressing table from the id's bytes
 * to the slot. Loading 100,000 entries is then a copy and a probe per record, with no string
 * or map entry made for each; a scan is a pass over one typed array. A slot is an index into
 * the arrays.
 */
export class SignatureIndex {
  /** slot + 1 per table position (0: empty); a power of two, at most half full. */
  private table = new Int32Array(2048)
  /** Each slot's table key (its id's first 4 bytes, uniform since ids are hashes): a probe compares 32 bytes only on a likely match. */
  private keys = new Uint32Array(1024)
  private records = Buffer.alloc(1024 * RECORD_BYTES)
  /** HASH_WORDS words per slot. */
  hashes = new Uint32Array(1024 * HASH_WORDS)
  private readonly scratch = Buffer.alloc(32)
  private count = 0

  get size(): number { return this.count }

  /** Slots allocated (size grows into it). */
  get capacity(): number { return this.keys.length }

  has(id: string): boolean { return this.slotOf(id) !== undefined }

  /** The slot of `id`, or undefined when it has no signature yet (or `id` is not an object id). */
  slotOf(id: string): number | undefined {
    if (id.length !== 64 || this.scratch.write(id, 0, 32, 'hex') !== 32) return undefined
    const slot = this.find(this.scratch, 0)
    return slot < 0 ? undefined : slot
  }

  /** False when the object is known not to be a decodable image. */
  isImage(slot: number): boolean { return this.records[slot * RECORD_BYTES + 72] === 1 }

  distance(a: number, b: number): number {
    return hammingDistance(this.hashes, this.hashes, a * HASH_WORDS, b * HASH_WORDS)
  }

  /** Exactly the same decoded pixels (and size), whatever the encoded bytes. */
  samePixels(a: number, b: number): boolean {
    const [oa, ob] = [a * RECORD_BYTES, b * RECORD_BYTES]
    return this.records.compare(this.records, ob + 48, ob + 72, oa + 48, oa + 72) === 0
  }

  signature(slot: number): ImageSignature | null {
    if (!this.isImage(slot)) return null
    const o = slot * RECORD_BYTES
    return {
      hash: this.hashes.slice(slot * HASH_WORDS, (slot + 1) * HASH_WORDS),
      pixels: Buffer.from(this.records.subarray(o + 48, o + 64)),
      width: this.records.readUInt32LE(o + 64),
      height: this.records.readUInt32LE(o + 68),
    }
  }

  set(id: string, signature: ImageSignature | null): number {
    const record = Buffer.alloc(RECORD_BYTES)
    encodeRecord(record, 0, id, signature)
    return this.setFromRecord(record, 0)
  }

  /**
   * Makes room for `n` more entries. `exact`: a known count (a cache file's worth), sized to
   * it; otherwise the arrays double, so adding entries one by one stays linear.
   */
  reserve(n: number, exact = false): void {
    const need = this.count + n
    if (need > this.keys.length) this.grow(need, exact)
    if (need * 2 > this.table.length) this.rehash(need * 2)
  }

  /**
   * Adds the checked records at `offsets` of `buf` (a cache file just read). Records of new
   * ids that lie one after another in the file are copied in one piece: a clean file of
   * 100,000 records is one copy, not 100,000.
   */
  addRecords(buf: Buffer, offsets: Int32Array, n: number): void {
    this.reserve(n, true)
    let runFrom = -1
    let runTo = -1
    let runSlot = 0
    const flush = (): void => {
      if (runFrom >= 0) buf.copy(this.records, runSlot * RECORD_BYTES, runFrom, runTo)
      runFrom = -1
    }
    for (let k = 0; k < n; k++) {
      const o = offsets[k]
      // Appended twice (two processes signed it): the signature is the same, keep one. (A
      // repeat inside the run not copied yet is not seen and takes a second slot: harmless.)
      if (this.find(buf, o) >= 0) continue
      const slot = this.count++
      this.keys[slot] = buf.readUInt32LE(o)
      this.table[this.position(this.keys[slot])] = slot + 1
      for (let i = 0; i < HASH_WORDS; i++) this.hashes[slot * HASH_WORDS + i] = buf.readUInt32LE(o + 32 + i * 4)
      if (runFrom >= 0 && o === runTo) runTo += RECORD_BYTES
      else {
        flush()
        runFrom = o
        runTo = o + RECORD_BYTES
        runSlot = slot
      }
    }
    flush()
  }

  /** Fills a slot (the id's own, or a new one) from a checked cache record's bytes. */
  setFromRecord(buf: Buffer, o: number): number {
    let slot = this.find(buf, o)
    if (slot < 0) {
      this.reserve(1)
      slot = this.count++
      this.keys[slot] = buf.readUInt32LE(o)
      this.table[this.position(this.keys[slot])] = slot + 1
    }
    buf.copy(this.records, slot * RECORD_BYTES, o, o + RECORD_BYTES)
    for (let i = 0; i < HASH_WORDS; i++) this.hashes[slot * HASH_WORDS + i] = buf.readUInt32LE(o + 32 + i * 4)
    return slot
  }

  /** The slot whose id equals the 32 bytes at `buf[o]`, or -1. */
  private find(buf: Buffer, o: number): number {
    const key = buf.readUInt32LE(o)
    const mask = this.table.length - 1
    for (let p = key & mask; ; p = (p + 1) & mask) {
      const entry = this.table[p]
      if (entry === 0) return -1
      if (this.keys[entry - 1] !== key) continue
      const r = (entry - 1) * RECORD_BYTES
      if (this.records.compare(buf, o, o + 32, r, r + 32) === 0) return entry - 1
    }
  }

  /** The first free table position for `key`. */
  private position(key: number): number {
    const mask = this.table.length - 1
    let p = key & mask
    while (this.table[p] !== 0) p = (p + 1) & mask
    return p
  }

  /** A table of at least `atLeast` positions, refilled with every slot. */
  private rehash(atLeast: number): void {
    let size = this.table.length
    while (size < atLeast) size *= 2
    this.table = new Int32Array(size)
    for (let slot = 0; slot < this.count; slot++) this.table[this.position(this.keys[slot])] = slot + 1
  }

  /** Room for at least `slots` slots: exactly that many when `exact` (a known load), else doubling (so adding one by one stays linear). */
  private grow(slots: number, exact = false): void {
    let n = this.keys.length
    if (exact) n = slots
    while (n < slots) n *= 2
    const keys = new Uint32Array(n)
    keys.set(this.keys)
    this.keys = keys
    const records = Buffer.alloc(n * RECORD_BYTES)
    this.records.copy(records)
    this.records = records
    const hashes = new Uint32Array(n * HASH_WORDS)
    hashes.set(this.hashes)
    this.hashes = hashes
  }
}
