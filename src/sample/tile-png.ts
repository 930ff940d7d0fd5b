import {PNG} from 'pngjs'

/** Small deterministic PRNG (mulberry32): the same seed always draws the same tile. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/**
 * A real PNG that looks like a map tile: a coloured ground, blocky "buildings" and some
 * per-pixel grain. `noise` (0..1) sets how much grain, which sets how well it compresses
 * (512 px with noise 0.5 gives a few hundred KB, like the pipeline's renders).
 */
export function makeTilePng(size: number, seed: number, noise = 0.15): Buffer {
  const rand = prng(seed)
  const png = new PNG({width: size, height: size, colorType: 2})
  const base = [60 + rand() * 120, 80 + rand() * 120, 60 + rand() * 100]
  const blocks: Array<[number, number, number, number, number[]]> = []
  for (let i = 0; i < 6 + Math.floor(rand() * 6); i++) {
    const w = Math.floor(size * (0.1 + rand() * 0.3))
    const h = Math.floor(size * (0.1 + rand() * 0.3))
    blocks.push([Math.floor(rand() * (size - w)), Math.floor(rand() * (size - h)), w, h, [rand() * 255, rand() * 255, rand() * 255]])
  }
  // Paint ground then blocks rectangle by rectangle (later blocks on top), then the grain.
  const px = new Float32Array(size * size * 3)
  for (let i = 0; i < size * size; i++) px.set(base, i * 3)
  for (const [bx, by, bw, bh, bc] of blocks) {
    for (let y = by; y < by + bh; y++) for (let x = bx; x < bx + bw; x++) px.set(bc, (y * size + x) * 3)
  }
  const grain = prng(seed ^ 0x9e3779b9)
  for (let i = 0, o = 0; i < size * size; i++, o += 4) {
    const g = grain() < noise ? (grain() - 0.5) * 80 : 0
    png.data[o] = Math.max(0, Math.min(255, px[i * 3] + g))
    png.data[o + 1] = Math.max(0, Math.min(255, px[i * 3 + 1] + g))
    png.data[o + 2] = Math.max(0, Math.min(255, px[i * 3 + 2] + g))
    png.data[o + 3] = 255
  }
  return PNG.sync.write(png, {colorType: 2, deflateLevel: 6})
}
