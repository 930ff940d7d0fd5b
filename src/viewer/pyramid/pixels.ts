import sharp from 'sharp'

import {IMAGE_PX} from '../web/geometry.js'

/**
 * The pixel work of the pyramid, all through sharp (libvips): decoding the stored PNGs into
 * cells, shrinking each image to the half-size copy its parent is laid out from, and
 * encoding WebP for the page. Between levels images are raw RGBA buffers.
 */

sharp.cache(false)

const TRANSPARENT = {r: 0, g: 0, b: 0, alpha: 0}
const CHANNELS = 4

/** Width and height from a PNG's header, without decoding it. */
export function pngSize(bytes: Buffer): {width: number; height: number} | null {
  if (bytes.length < 24 || bytes.readUInt32BE(12) !== 0x49484452) return null
  return {width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20)}
}

/**
 * A tile's image as a square cell of `edge` px (aspect kept, transparent margins), raw RGBA.
 * Shrinking uses lanczos; enlarging a small image repeats its pixels (nearest), so a 16 px
 * tile shown at 64 px keeps its exact colours.
 */
export async function tileCell(png: Buffer, edge: number): Promise<Buffer> {
  const size = pngSize(png)
  const enlarging = size !== null && size.width <= edge && size.height <= edge
  return sharp(png)
    .resize(edge, edge, {fit: 'contain', background: TRANSPARENT, kernel: enlarging ? 'nearest' : 'lanczos3'})
    .ensureAlpha()
    .raw()
    .toBuffer()
}

const emptyCells = new Map<number, Buffer>()

/**
 * The cell of a tile that exists but has no image in this layer (a NULL blob): grey with a
 * darker cross, as the viewer has always drawn it, so "no image" differs from "no tile".
 */
export function emptyCell(edge: number): Buffer {
  let cell = emptyCells.get(edge)
  if (cell) return cell
  cell = Buffer.alloc(edge * edge * CHANNELS)
  const inset = Math.max(1, Math.floor(edge / 8))
  for (let y = 0; y < edge; y++) {
    for (let x = 0; x < edge; x++) {
      const o = (y * edge + x) * CHANNELS
      const onCross = edge >= 8 && x >= inset && x < edge - inset && (Math.abs(x - y) <= edge / 32 || Math.abs(edge - 1 - x - y) <= edge / 32)
      const v = onCross ? 120 : 180
      cell[o] = v
      cell[o + 1] = v
      cell[o + 2] = v
      cell[o + 3] = 255
    }
  }
  emptyCells.set(edge, cell)
  return cell
}

/**
 * Lays `cells` (each `edge` px square raw RGBA, or null for nothing) out `across` per row
 * into one raw image of across*edge px per side.
 */
export function compose(cells: Array<Buffer | null>, across: number, edge: number): Buffer {
  const width = across * edge
  const out = Buffer.alloc(width * width * CHANNELS)
  const rowBytes = edge * CHANNELS
  cells.forEach((cell, n) => {
    if (!cell) return
    const cx = (n % across) * edge
    const cy = Math.floor(n / across) * edge
    for (let y = 0; y < edge; y++) cell.copy(out, ((cy + y) * width + cx) * CHANNELS, y * rowBytes, (y + 1) * rowBytes)
  })
  return out
}

/** Edge of an image's half-size copy: what its parent is made of. */
export const HALF_PX = IMAGE_PX / 2

/**
 * A raw map image shrunk to half its edge: a quarter of its parent. Kept next to the image,
 * so a parent is four halves laid out, never a decode of its children's WebP.
 */
export async function halve(raw: Buffer): Promise<Buffer> {
  return sharp(raw, {raw: {width: IMAGE_PX, height: IMAGE_PX, channels: CHANNELS}})
    .resize(HALF_PX, HALF_PX, {kernel: 'lanczos3'})
    .raw()
    .toBuffer()
}

/**
 * A raw map image as the WebP the page loads: lossless at the lowest effort. Measured on
 * leaf images of 512 px noisy tiles, that is 3x faster to make than lossy WebP at quality 85
 * (1.8 ms against 6.0 ms) and only 10% larger (29.5 KB against 26.7 KB); and a map image
 * shows the tiles' exact colours, so a parent made from it loses nothing either.
 */
export async function encodeImage(raw: Buffer): Promise<Buffer> {
  return sharp(raw, {raw: {width: IMAGE_PX, height: IMAGE_PX, channels: CHANNELS}})
    .webp({lossless: true, effort: 0})
    .toBuffer()
}

/** A cached map image back to raw RGBA (to make a parent of it). */
export async function decodeImage(webp: Buffer): Promise<Buffer> {
  return sharp(webp).ensureAlpha().raw().toBuffer()
}

let placeholders: {transparent: Promise<Buffer>; empty: Promise<Buffer>} | undefined

/** Stand-ins at zoom 0, where a tile is its stored PNG: no tile here, or a tile with no image in this layer. */
export function placeholderPngs(): {transparent: Promise<Buffer>; empty: Promise<Buffer>} {
  placeholders ??= {
    transparent: sharp({create: {width: 1, height: 1, channels: 4, background: TRANSPARENT}}).png().toBuffer(),
    empty: sharp(emptyCell(IMAGE_PX), {raw: {width: IMAGE_PX, height: IMAGE_PX, channels: CHANNELS}}).png().toBuffer(),
  }
  return placeholders
}
