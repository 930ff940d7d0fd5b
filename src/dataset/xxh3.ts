import {xxh3} from '@node-rs/xxhash'

/**
 * The content hash oxen stores for every file: XXH3-128 of the raw bytes, lowercase hex with
 * leading zeros stripped (oxen prints the u128 without padding, so compare unpadded).
 * Shared by the client (to skip uploads the hub already holds) and the test hub.
 */
export function xxh3_128Hex(bytes: Uint8Array): string {
  return xxh3.xxh128(bytes).toString(16)
}

/** Compares two oxen hashes, tolerating one side written zero-padded or in upper case. */
export function sameOxenHash(a: string, b: string): boolean {
  const strip = (h: string) => h.toLowerCase().replace(/^0+(?=.)/, '')
  return strip(a) === strip(b)
}
