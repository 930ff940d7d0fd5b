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
  const grain = prng(seed ^ 0x9e3779b9)
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let c = base
      for (const [bx, by, bw, bh, bc] of blocks) if (x >= bx && x < bx + bw && y >= by && y < by + bh) c = bc
      const i = (y * size + x) << 2
      const g = grain() < noise ? (grain() - 0.5) * 80 : 0
      png.data[i] = Math.max(0, Math.min(255, c[0] + g))
      png.data[i + 1] = Math.max(0, Math.min(255, c[1] + g))
      png.data[i + 2] = Math.max(0, Math.min(255, c[2] + g))
      png.data[i + 3] = 255
    }
  }
  return PNG.sync.write(png, {colorType: 2})
}
