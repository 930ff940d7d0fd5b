import sharp from 'sharp'

/**
 * All image work of the viewer and the HTML report goes through sharp (libvips): decoding
 * the stored PNGs, downscaling them, and joining thumbnails into one sprite per region.
 * Output is WebP (small, with alpha; every current browser shows it).
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

/**
 * A map cell: a small square thumbnail as a fast-to-write PNG, the input of `sprite()`.
 * (libvips joins encoded images only; PNG at low compression is the cheapest to make.)
 */
export async function cellThumbnail(bytes: Buffer, size: number): Promise<Buffer> {
  return sharp(bytes)
    .resize(size, size, {fit: 'contain', background: TRANSPARENT})
    .ensureAlpha()
    .png({compressionLevel: 1})
    .toBuffer()
}

let blankCell: {size: number; bytes: Promise<Buffer>} | undefined

function blank(size: number): Promise<Buffer> {
  if (blankCell?.size !== size) {
    blankCell = {size, bytes: sharp({create: {width: size, height: size, channels: 4, background: TRANSPARENT}}).png().toBuffer()}
  }
  return blankCell.bytes
}

/**
 * Joins `cells` (thumbnails of `cell` px, or null for an empty slot) row by row, `across`
 * per row, into one WebP image: a whole region of the map in one request.
 */
export async function sprite(cells: Array<Buffer | null>, across: number, cell: number): Promise<Buffer> {
  const empty = await blank(cell)
  const inputs = cells.map((c) => c ?? empty)
  return sharp(inputs, {join: {across, background: TRANSPARENT}})
    .resize(across * cell, Math.ceil(cells.length / across) * cell, {fit: 'fill'})
    .webp({quality: 80, alphaQuality: 100, effort: 2})
    .toBuffer()
}
