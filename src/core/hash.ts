import {createRequire} from 'node:module'

/**
 * Object ids are BLAKE3-256 of the object's bytes, as lowercase hex. For a tile this is
 * exactly what `b3sum` prints for the PNG, so anyone can check a stored image by hand.
 *
 * Two implementations compute the same function: the native one (`@napi-rs/blake-hash`, a
 * prebuilt binary from its per-platform npm package; ~6 GB/s a core with SIMD) wherever its
 * binary loads, and blake3-wasm (~0.6-1 GB/s a core) where it does not: an unsupported
 * platform, an install without optional packages, or `TILESYNC_BLAKE3=wasm`, which forces it.
 * Hashing is most of a first commit's and a clone's CPU time, so the choice is speed only: ids
 * are byte-for-byte the same either way (test/hash-implementations.test.ts checks both
 * against each other and against b3sum).
 */
export type HashImplementation = 'native' | 'wasm'

interface Blake3 {
  hash(bytes: Uint8Array): string
  createHasher(): {update(chunk: Uint8Array): void; digestHex(): string}
}

const require = createRequire(import.meta.url)

interface NativeModule {
  blake3(input: Buffer): Buffer
  Blake3Hasher: new () => {update(input: Buffer): unknown; digest(format: 'hex'): string}
}

interface WasmModule {
  hash(input: Uint8Array): Buffer
  createHash(): {update(input: Uint8Array): unknown; digest(encoding: 'hex'): string}
}

/** napi's Buffer arguments: a view over the same memory, no copy. */
const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength))

function loadNative(): Blake3 | null {
  let m: NativeModule
  try {
    m = require('@napi-rs/blake-hash') as NativeModule
  } catch {
    return null
  }
  return {
    hash: (bytes) => m.blake3(asBuffer(bytes)).toString('hex'),
    createHasher: () => {
      const h = new m.Blake3Hasher()
      return {update: (chunk) => void h.update(asBuffer(chunk)), digestHex: () => h.digest('hex')}
    },
  }
}

function loadWasm(): Blake3 {
  const m = require('blake3-wasm') as WasmModule
  return {
    hash: (bytes) => m.hash(bytes).toString('hex'),
    createHasher: () => {
      const h = m.createHash()
      return {update: (chunk) => void h.update(chunk), digestHex: () => h.digest('hex')}
    },
  }
}

const loaded = new Map<HashImplementation, Blake3 | null>()

/** One implementation, loaded on first use; null when its binary does not load here. */
export function hashImplementation(kind: HashImplementation): Blake3 | null {
  if (!loaded.has(kind)) loaded.set(kind, kind === 'native' ? loadNative() : loadWasm())
  return loaded.get(kind)!
}

let chosen: {kind: HashImplementation; impl: Blake3} | null = null

/** The implementation this process hashes with: native unless it does not load or TILESYNC_BLAKE3=wasm. */
function current(): {kind: HashImplementation; impl: Blake3} {
  if (chosen) return chosen
  const native = process.env.TILESYNC_BLAKE3 === 'wasm' ? null : hashImplementation('native')
  chosen = native ? {kind: 'native', impl: native} : {kind: 'wasm', impl: hashImplementation('wasm')!}
  return chosen
}

/** Which implementation hashes in this process ('native' or 'wasm'). */
export function activeHashImplementation(): HashImplementation {
  return current().kind
}

export function hashBytes(bytes: Uint8Array): string {
  return current().impl.hash(bytes)
}

/** Incremental hasher for bytes that arrive in pieces (streamed files, remote bodies). */
export function createHasher(): {update(chunk: Uint8Array): void; digestHex(): string} {
  return current().impl.createHasher()
}

export const ID_HEX_LENGTH = 64

const ID_PATTERN = /^[0-9a-f]{64}$/

export function isObjectId(value: string): boolean {
  return ID_PATTERN.test(value)
}
