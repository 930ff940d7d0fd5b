import blake3 from 'blake3-wasm'

/**
 * Object ids are BLAKE3-256 of the object's bytes, as lowercase hex. For a tile this is
 * exactly what `b3sum` prints for the PNG, so anyone can check a stored image by hand.
 */
export function hashBytes(bytes: Uint8Array): string {
  return blake3.hash(bytes).toString('hex')
}

/** Incremental hasher for bytes that arrive in pieces (streamed files, remote bodies). */
export function createHasher(): {update(chunk: Uint8Array): void; digestHex(): string} {
  const h = blake3.createHash()
  return {
    update: (chunk) => { h.update(chunk) },
    digestHex: () => h.digest('hex') as string,
  }
}

export const ID_HEX_LENGTH = 64

const ID_PATTERN = /^[0-9a-f]{64}$/

export function isObjectId(value: string): boolean {
  return ID_PATTERN.test(value)
}
