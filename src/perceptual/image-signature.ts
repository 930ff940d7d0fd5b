import {xxh3} from '@node-rs/xxhash'
import type {OutputInfo} from 'sharp'

import {differenceHash, type PerceptualHash} from './dhash.js'

type SharpConstructor = (typeof import('sharp'))['default']

/**
 * What tilesync remembers about one image object: its perceptual hash, for "looks alike",
 * and a digest of its decoded pixels, for "is the same picture" whatever the file's bytes
 * (re-encoded, other compression, palette vs RGB).
 */
export interface ImageSignature {
  hash: PerceptualHash
  /** XXH3-128 of the 8-bit sRGB RGBA pixels, seeded with the size: equal exactly when the pixels are. */
  pixels: Buffer
  width: number
  height: number
}

/** Larger images are refused rather than decoded (libvips' own default limit, ~268 Mpx, would take GBs). */
const MAX_PIXELS = 64 * 1024 * 1024

// Loaded on the first decode: a run that finds every signature cached never needs libvips.
let sharpLoaded: Promise<SharpConstructor> | undefined
const loadSharp = (): Promise<SharpConstructor> => (sharpLoaded ??= import('sharp').then((m) => m.default))

/**
 * Decodes an image with sharp (libvips) to 8-bit sRGB RGBA and signs it. Null when the bytes
 * are not an image sharp can read (a blob column holding something else), so callers can
 * remember that too and never try again.
 */
export async function signImage(bytes: Buffer): Promise<ImageSignature | null> {
  const sharp = await loadSharp()
  let decoded: {data: Buffer; info: OutputInfo}
  try {
    decoded = await sharp(bytes, {limitInputPixels: MAX_PIXELS, sequentialRead: true})
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({depth: 'uchar'})
      .toBuffer({resolveWithObject: true})
  } catch {
    return null
  }
  const {data, info} = decoded
  if (info.channels !== 4 || data.length !== info.width * info.height * 4) return null
  return {hash: differenceHash(data, info.width, info.height), pixels: pixelDigest(data, info.width, info.height), width: info.width, height: info.height}
}

export function pixelDigest(rgba: Uint8Array, width: number, height: number): Buffer {
  const d = xxh3.xxh128(rgba, (BigInt(width) << 32n) | BigInt(height))
  const out = Buffer.alloc(16)
  out.writeBigUInt64BE(d >> 64n, 0)
  out.writeBigUInt64BE(d & 0xffffffffffffffffn, 8)
  return out
}
