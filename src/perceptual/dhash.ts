/**
 * A 128-bit difference hash (dHash) of decoded pixels: the image shrunk to two small grey grids
 * by area averaging, one bit per neighbouring pair saying which is brighter: 64 bits from
 * left/right pairs (a 9x8 grid) and 64 from top/bottom pairs (8x9). Re-encoding, a few changed
 * pixels or mild noise move few bits; a different picture moves about half of them, so the
 * number of differing bits (0..128) is the distance between two images.
 *
 * The averaging is done here rather than by an image library's resize, so a hash depends only
 * on the pixels: a cached hash stays valid across library upgrades.
 */

export const HASH_BITS = 128

/**
 * Two images at most this many bits apart are "nearly identical". Distinct tiles of the sample
 * generator sit 35 or more apart; a changed pixel moves at most a few bits.
 */
export const NEAR_DISTANCE = 10
export const HASH_WORDS = HASH_BITS / 32

/** Four 32-bit words; bit k is bit (k & 31) of word (k >> 5). */
export type PerceptualHash = Uint32Array

/**
 * The hash of 8-bit RGBA pixels, `width * height * 4` bytes. Transparent pixels count as
 * black (composited over black), so what is not visible cannot differ.
 */
export function differenceHash(rgba: Uint8Array, width: number, height: number): PerceptualHash {
  if (width < 1 || height < 1 || rgba.length < width * height * 4) throw new Error(`differenceHash: ${rgba.length} bytes cannot be a ${width}x${height} RGBA image`)
  const luma = new Float64Array(width * height)
  for (let i = 0, o = 0; i < luma.length; i++, o += 4) {
    luma[i] = (0.299 * rgba[o] + 0.587 * rgba[o + 1] + 0.114 * rgba[o + 2]) * (rgba[o + 3] / 255)
  }
  const out = new Uint32Array(HASH_WORDS)
  let bit = 0
  const set = (on: boolean): void => {
    if (on) out[bit >> 5] |= 1 << (bit & 31)
    bit++
  }
  const wide = areaGrid(luma, width, height, 9, 8)
  for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) set(wide[r * 9 + c] > wide[r * 9 + c + 1])
  const tall = areaGrid(luma, width, height, 8, 9)
  for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) set(tall[r * 8 + c] > tall[(r + 1) * 8 + c])
  return out
}

/** Mean of each of `gw` x `gh` cells; a cell is at least one pixel, so tiny images repeat pixels. */
function areaGrid(luma: Float64Array, width: number, height: number, gw: number, gh: number): Float64Array {
  const bounds = (n: number, cells: number): Int32Array => {
    const b = new Int32Array(cells * 2)
    for (let i = 0; i < cells; i++) {
      const a = Math.min(n - 1, Math.floor((i * n) / cells))
      b[i * 2] = a
      b[i * 2 + 1] = Math.max(a + 1, Math.floor(((i + 1) * n) / cells))
    }
    return b
  }
  const xs = bounds(width, gw)
  const ys = bounds(height, gh)
  const grid = new Float64Array(gw * gh)
  for (let r = 0; r < gh; r++) {
    for (let c = 0; c < gw; c++) {
      let sum = 0
      const [x0, x1, y0, y1] = [xs[c * 2], xs[c * 2 + 1], ys[r * 2], ys[r * 2 + 1]]
      for (let y = y0; y < y1; y++) {
        const row = y * width
        for (let x = x0; x < x1; x++) sum += luma[row + x]
      }
      grid[r * gw + c] = sum / ((x1 - x0) * (y1 - y0))
    }
  }
  return grid
}

function popcount(v: number): number {
  v -= (v >>> 1) & 0x55555555
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333)
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24)
}

/** Number of differing bits, 0..128. `bOffset` reads `b` at word offset (hashes packed in one array). */
export function hammingDistance(a: Uint32Array, b: Uint32Array, aOffset = 0, bOffset = 0): number {
  return popcount(a[aOffset] ^ b[bOffset]) + popcount(a[aOffset + 1] ^ b[bOffset + 1]) +
    popcount(a[aOffset + 2] ^ b[bOffset + 2]) + popcount(a[aOffset + 3] ^ b[bOffset + 3])
}

/** 32 hex digits, word 0 first (for JSON output and exact-equality grouping). */
export function hashHex(h: Uint32Array, offset = 0): string {
  let s = ''
  for (let i = 0; i < HASH_WORDS; i++) s += (h[offset + i] >>> 0).toString(16).padStart(8, '0')
  return s
}
