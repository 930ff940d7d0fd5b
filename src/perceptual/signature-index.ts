import {HASH_WORDS, hammingDistance} from './dhash.js'
import type {ImageSignature} from './image-signature.js'

/**
 * Signatures by object id, packed into flat arrays: a scan over 100,000 images reads one
 * Uint32Array rather than 100,000 objects. A slot is an index into those arrays.
 */
export class SignatureIndex {
  private readonly slots = new Map<string, number>()
  private count = 0
  /** HASH_WORDS words per slot. */
  hashes = new Uint32Array(1024 * HASH_WORDS)
  private pixels = Buffer.alloc(1024 * 16)
  private sizes = new Uint32Array(1024 * 2)
  private images = new Uint8Array(1024)

  get size(): number { return this.count }

  has(id: string): boolean { return this.slots.has(id) }

  /** The slot of `id`, or undefined when it has no signature yet. */
  slotOf(id: string): number | undefined { return this.slots.get(id) }

  /** False when the object is known not to be a decodable image. */
  isImage(slot: number): boolean { return this.images[slot] === 1 }

  distance(a: number, b: number): number {
    return hammingDistance(this.hashes, this.hashes, a * HASH_WORDS, b * HASH_WORDS)
  }

  /** Exactly the same decoded pixels (and size), whatever the encoded bytes. */
  samePixels(a: number, b: number): boolean {
    return this.pixels.compare(this.pixels, b * 16, b * 16 + 16, a * 16, a * 16 + 16) === 0
  }

  signature(slot: number): ImageSignature | null {
    if (!this.isImage(slot)) return null
    return {
      hash: this.hashes.slice(slot * HASH_WORDS, (slot + 1) * HASH_WORDS),
      pixels: Buffer.from(this.pixels.subarray(slot * 16, slot * 16 + 16)),
      width: this.sizes[slot * 2],
      height: this.sizes[slot * 2 + 1],
    }
  }

  set(id: string, signature: ImageSignature | null): number {
    const slot = this.slotFor(id)
    this.images[slot] = signature ? 1 : 0
    if (signature) {
      this.hashes.set(signature.hash.subarray(0, HASH_WORDS), slot * HASH_WORDS)
      signature.pixels.copy(this.pixels, slot * 16, 0, 16)
      this.sizes[slot * 2] = signature.width
      this.sizes[slot * 2 + 1] = signature.height
    }
    return slot
  }

  /** Fills a slot straight from a cache record's bytes (see signature-file.ts), without intermediate objects. */
  setFromRecord(id: string, buf: Buffer, o: number, image: boolean): void {
    const slot = this.slotFor(id)
    this.images[slot] = image ? 1 : 0
    if (!image) return
    for (let i = 0; i < HASH_WORDS; i++) this.hashes[slot * HASH_WORDS + i] = buf.readUInt32LE(o + 32 + i * 4)
    buf.copy(this.pixels, slot * 16, o + 48, o + 64)
    this.sizes[slot * 2] = buf.readUInt32LE(o + 64)
    this.sizes[slot * 2 + 1] = buf.readUInt32LE(o + 68)
  }

  private slotFor(id: string): number {
    const existing = this.slots.get(id)
    if (existing !== undefined) return existing
    if (this.count === this.images.length) this.grow()
    const slot = this.count++
    this.slots.set(id, slot)
    return slot
  }

  private grow(): void {
    const n = this.images.length * 2
    const hashes = new Uint32Array(n * HASH_WORDS)
    hashes.set(this.hashes)
    this.hashes = hashes
    const pixels = Buffer.alloc(n * 16)
    this.pixels.copy(pixels)
    this.pixels = pixels
    const sizes = new Uint32Array(n * 2)
    sizes.set(this.sizes)
    this.sizes = sizes
    const images = new Uint8Array(n)
    images.set(this.images)
    this.images = images
  }
}
