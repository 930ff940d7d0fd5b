import sharp from 'sharp'

/**
 * Thumbnails for the viewer's side panel and the HTML report go through sharp (libvips):
 * decoding the stored PNGs and downscaling them. Output is WebP (small, with alpha; every
 * current browser shows it). The map's images are the pyramid's (pyramid/pixels.ts).
 */

// The viewer makes many small images; libvips' operation cache would only hold memory.
sharp.cache(false)

const TRANSPARENT = {r: 0, g: 0, b: 0, alpha: 0}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length > PNG_SIGNATURE.length && Buffer.from(bytes.subarray(0, 8)).equals(PNG_SIGNATURE)
}

/** A square thumbnail of `size` px (aspect kept, transparent margins), as WebP. */
export async function thumbnail(bytes: Buffer, size: number): Promise<Buffer> {
  return sharp(bytes)
    .resize(size, size, {fit: 'contain', background: TRANSPARENT})
    .ensureAlpha()
    .webp({quality: 82, alphaQuality: 100, effort: 2})
    .toBuffer()
}

/** Width and height of an encoded image. */
export async function dimensions(bytes: Buffer): Promise<{width: number; height: number}> {
  const m = await sharp(bytes).metadata()
  return {width: m.width ?? 0, height: m.height ?? 0}
}
