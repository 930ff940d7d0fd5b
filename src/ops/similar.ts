import {TilesyncError} from '../core/errors.js'
import {HASH_BITS, HASH_WORDS, NEAR_DISTANCE} from '../perceptual/dhash.js'
import type {EnsureStats} from '../perceptual/signatures.js'
import type {SignatureIndex} from '../perceptual/signature-index.js'
import type {TableTree} from '../snapshot/model.js'
import {openSignatures, signTileImages} from './sign-images.js'
import {checkLayer, ImageReader, layerNames, listTileImages, type TileImage, tileTableOf} from './tile-images.js'
import type {TreeState} from '../snapshot/tree-state.js'
import type {Workspace} from '../workspace/workspace.js'

export interface SimilarMatch {
  x: number
  y: number
  layer: string
  object: string
  /** Differing bits of the perceptual hashes, 0..128. */
  distance: number
  /** The same decoded pixels as the tile asked about (a copy, or the same picture re-encoded). */
  samePixels: boolean
}

export interface SimilarResult {
  revision: string
  tile: {x: number; y: number; layer: string; object: string}
  matches: SimilarMatch[]
  /** Images of that layer compared against it. */
  compared: number
  signatures: EnsureStats
}

export interface DuplicateGroup {
  layer: string
  /** First tile first; `distance`/`samePixels` are relative to it. */
  tiles: Array<{x: number; y: number; object: string; distance: number; samePixels: boolean}>
}

export interface DuplicatesResult {
  revision: string
  threshold: number
  layers: string[]
  images: number
  groups: DuplicateGroup[]
  signatures: EnsureStats
}

interface Loaded {
  revision: string
  images: TileImage[]
  /** Per image, its slot in `index`; -1 when its bytes could not be read. */
  slots: Int32Array
  index: SignatureIndex
  signatures: EnsureStats
}

/** The revision's tile table, or a clear error when it has none. */
async function tilesAt(ws: Workspace, revision: string): Promise<{id: string; state: TreeState; table: TableTree}> {
  const id = await ws.resolve(revision)
  const state = await ws.stateOf(id)
  const table = tileTableOf(state)
  if (!table) throw new TilesyncError('TABLE_MISSING', `${revision} has no tile table keyed by x,y`, {hint: 'see `tilesync init --help` for choosing the tile table'})
  return {id, state, table}
}

/** Every image of `layers` in the state, signed (from the cache, or decoded now). */
async function loadSigned(ws: Workspace, at: {id: string; state: TreeState}, layers: string[]): Promise<Loaded> {
  const images = await listTileImages(at.state, ws.reader, layers)
  const sigs = openSignatures(ws)
  const reader = new ImageReader(ws)
  try {
    const {stats, slots} = await signTileImages(sigs, images, reader)
    return {revision: at.id, images, slots, index: sigs.index, signatures: stats}
  } finally {
    reader.close()
  }
}

const byPosition = (a: {x: number; y: number}, b: {x: number; y: number}): number => a.y - b.y || a.x - b.x

/** The tiles at REV that look most like tile X,Y (in one layer), nearest first. */
export async function similarTiles(ws: Workspace, options: {tile: [number, number]; layer?: string; revision?: string; limit?: number}): Promise<SimilarResult> {
  const revision = options.revision ?? 'HEAD'
  const [x, y] = options.tile
  const limit = options.limit ?? 10
  if (!Number.isInteger(limit) || limit < 1) throw new TilesyncError('BAD_ARGUMENT', `-n must be a positive integer, got ${limit}`, {hint: 'e.g. -n 10'})
  const at = await tilesAt(ws, revision)
  if (options.layer) checkLayer(at.table, options.layer)
  // The layer: the one asked for, else the tile's last layer that holds an image (the
  // generated image, in the pipeline's schema).
  const own = await listTileImages(at.state, ws.reader, options.layer ? [options.layer] : undefined, [x, y, x, y])
  const query = own.at(-1)
  if (!query) {
    throw new TilesyncError('TILE_MISSING', `tile ${x},${y} has no ${options.layer ? `${options.layer} ` : ''}image at ${revision}`, {hint: '`tilesync show REV --tile X,Y` shows what the tile holds'})
  }
  const layer = query.layer
  const loaded = await loadSigned(ws, at, [layer])
  const {index} = loaded
  const q = index.slotOf(query.id)
  if (q === undefined) {
    throw new TilesyncError('OBJECT_MISSING', `the ${layer} image of tile ${x},${y} at ${revision} (${query.id.slice(0, 10)}) is not in the local store`, {hint: 'run `tilesync fsck --repair` to fetch it from a remote'})
  }
  if (!index.isImage(q)) {
    throw new TilesyncError('BAD_ARGUMENT', `tile ${x},${y} ${layer} at ${revision} is not an image tilesync can decode`, {hint: `\`tilesync show ${revision} --tile ${x},${y} --layer ${layer} -o file\` writes it out`})
  }
  // One pass keeping the best `limit`: a sorted insert into a short array beats sorting 100,000.
  // Rank: distance, then the same pixels before merely the same hash, then position.
  const best: Candidate[] = []
  let compared = 0
  for (let i = 0; i < loaded.images.length; i++) {
    const image = loaded.images[i]
    const slot = loaded.slots[i]
    if (slot < 0 || (image.x === x && image.y === y) || !index.isImage(slot)) continue
    compared++
    const distance = slot === q ? 0 : index.distance(q, slot)
    if (best.length === limit && distance > best[limit - 1].distance) continue
    const c: Candidate = {image, slot, distance, samePixels: distance === 0 && (slot === q || index.samePixels(q, slot))}
    if (best.length === limit && !before(c, best[limit - 1])) continue
    let pos = best.length
    while (pos > 0 && before(c, best[pos - 1])) pos--
    best.splice(pos, 0, c)
    if (best.length > limit) best.pop()
  }
  return {
    revision: loaded.revision,
    tile: {x, y, layer, object: query.id},
    matches: best.map((b) => ({x: b.image.x, y: b.image.y, layer, object: b.image.id, distance: b.distance, samePixels: b.samePixels})),
    compared,
    signatures: loaded.signatures,
  }
}

interface Candidate {
  image: TileImage
  slot: number
  distance: number
  samePixels: boolean
}

function before(a: Candidate, b: Candidate): boolean {
  if (a.distance !== b.distance) return a.distance < b.distance
  if (a.samePixels !== b.samePixels) return a.samePixels
  return byPosition(a.image, b.image) < 0
}

/**
 * Groups of tiles whose images (in the same layer) are within `threshold` bits of each other,
 * joined transitively, largest group first. Candidate pairs come from multi-index hashing
 * (see searchPlan): only hashes whose pieces are near each other are compared, not every pair.
 */
export async function duplicateTiles(ws: Workspace, options: {revision?: string; layer?: string; threshold?: number} = {}): Promise<DuplicatesResult> {
  const revision = options.revision ?? 'HEAD'
  const threshold = options.threshold ?? NEAR_DISTANCE
  if (!Number.isInteger(threshold) || threshold < 0 || threshold > 32) {
    throw new TilesyncError('BAD_ARGUMENT', `--threshold must be an integer from 0 to 32 (bits of ${HASH_BITS}), got ${threshold}`, {hint: `the default is ${NEAR_DISTANCE}`})
  }
  const at = await tilesAt(ws, revision)
  if (options.layer) checkLayer(at.table, options.layer)
  const layers = options.layer ? [options.layer] : layerNames(at.table)
  const loaded = await loadSigned(ws, at, layers)
  const groups: DuplicateGroup[] = []
  let images = 0
  for (const layer of layers) {
    const members: Array<{image: TileImage; slot: number}> = []
    loaded.images.forEach((image, i) => {
      const slot = loaded.slots[i]
      if (image.layer === layer && slot >= 0 && loaded.index.isImage(slot)) members.push({image, slot})
    })
    images += members.length
    for (const g of groupNear(loaded.index, members.map((m) => m.slot), threshold)) {
      const tiles = g.map((i) => members[i]).sort((a, b) => byPosition(a.image, b.image))
      const first = tiles[0].slot
      groups.push({
        layer,
        tiles: tiles.map((t) => ({x: t.image.x, y: t.image.y, object: t.image.id, distance: loaded.index.distance(first, t.slot), samePixels: loaded.index.samePixels(first, t.slot)})),
      })
    }
  }
  groups.sort((a, b) => b.tiles.length - a.tiles.length || byPosition(a.tiles[0], b.tiles[0]) || (a.layer < b.layer ? -1 : 1))
  return {revision: loaded.revision, threshold, layers, images, groups, signatures: loaded.signatures}
}

/**
 * How to split the hash for multi-index hashing: `chunks` pieces, each searched within
 * `radius` bits. Two hashes within `threshold` have some piece within `radius` whenever
 * chunks * (radius + 1) > threshold (pigeonhole). Short pieces fill few buckets (many
 * candidates), long ones need many neighbour lookups; this picks the cheaper mix for `n`
 * hashes, with pieces of at most 26 bits so a piece is a plain number.
 */
export function searchPlan(threshold: number, n: number): {chunks: number; radius: number} {
  let best: {chunks: number; radius: number; cost: number} | undefined
  for (const radius of [0, 1, 2]) {
    const chunks = Math.max(Math.floor(threshold / (radius + 1)) + 1, 5)
    const bits = HASH_BITS / chunks
    const lookups = radius === 0 ? 1 : radius === 1 ? 1 + bits : 1 + bits + (bits * (bits - 1)) / 2
    const cost = chunks * lookups * (1 + n / 2 ** bits)
    if (!best || cost < best.cost) best = {chunks, radius, cost}
  }
  return {chunks: best!.chunks, radius: best!.radius}
}

/** Buckets of 2^22 heads or fewer are a direct table (a linked list per value); larger ones a Map. */
const DIRECT_BITS = 22

/** Connected groups (of 2 or more) of `slots` within `threshold`; returns indices into `slots`. `plan` overrides searchPlan (tests). */
export function groupNear(index: SignatureIndex, slots: number[], threshold: number, plan?: {chunks: number; radius: number}): number[][] {
  const parent = Int32Array.from(slots, (_, i) => i)
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]]
      i = parent[i]
    }
    return i
  }
  const join = (a: number, b: number): void => {
    const ra = find(a)
    const rb = find(b)
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb)
  }
  const h = index.hashes
  // Equal hashes first (tiles sharing an object, copies, re-encodings): one representative
  // each for the search. Keyed by 30 bits of the first word (a small integer), then compared.
  const exact = new Map<number, number[]>()
  const reps: number[] = []
  const sameHash = (a: number, b: number): boolean => {
    const [oa, ob] = [a * HASH_WORDS, b * HASH_WORDS]
    return h[oa] === h[ob] && h[oa + 1] === h[ob + 1] && h[oa + 2] === h[ob + 2] && h[oa + 3] === h[ob + 3]
  }
  slots.forEach((slot, i) => {
    const key = h[slot * HASH_WORDS] & 0x3fffffff
    const list = exact.get(key)
    const first = list?.find((r) => sameHash(slots[r], slot))
    if (first !== undefined) {
      join(first, i)
      return
    }
    if (list) list.push(i)
    else exact.set(key, [i])
    reps.push(i)
  })
  if (threshold > 0 && reps.length > 1) {
    const {chunks, radius} = plan ?? searchPlan(threshold, reps.length)
    if (chunks * (radius + 1) <= threshold || HASH_BITS / chunks > 26) throw new Error(`groupNear: ${chunks} pieces at radius ${radius} cannot find every pair within ${threshold}`)
    const values = new Int32Array(reps.length)
    const next = new Int32Array(reps.length)
    let heads: Int32Array | undefined
    let occupied: Uint32Array | undefined
    for (let c = 0; c < chunks; c++) {
      const start = Math.floor((c * HASH_BITS) / chunks)
      const end = Math.floor(((c + 1) * HASH_BITS) / chunks)
      const bits = end - start
      for (let r = 0; r < reps.length; r++) values[r] = chunkOf(h, slots[reps[r]] * HASH_WORDS, start, end)
      // Bucket by the piece's value: a head per value and a next link per rep (a direct table
      // when the piece is short enough, else a Map of first reps), then look up each rep's
      // value and its neighbours within `radius` bits. Only later reps are compared (q > r),
      // so each pair is checked from one side.
      const compare = (r: number, q: number): void => {
        const a = reps[r]
        const b = reps[q]
        if (find(a) !== find(b) && index.distance(slots[a], slots[b]) <= threshold) join(a, b)
      }
      if (bits <= DIRECT_BITS) {
        // Most neighbour values are empty: a bitmap of the occupied ones (1/32 of the heads'
        // size, so it stays in cache) answers those without touching the heads.
        if (!heads || heads.length !== 2 ** bits) {
          heads = new Int32Array(2 ** bits)
          occupied = new Uint32Array(Math.max(1, 2 ** bits / 32))
        }
        heads.fill(-1)
        occupied!.fill(0)
        const bitmap = occupied!
        for (let r = reps.length - 1; r >= 0; r--) {
          next[r] = heads[values[r]]
          heads[values[r]] = r
          bitmap[values[r] >>> 5] |= 1 << (values[r] & 31)
        }
        // A pair in one bucket is compared from its earlier rep (q > r); a pair in two
        // neighbouring buckets from the lower value's side only (every rep of the other).
        const hd = heads
        for (let r = 0; r < reps.length; r++) {
          const v = values[r]
          for (let q = next[r]; q >= 0; q = next[q]) compare(r, q)
          if (radius < 1) continue
          for (let i = 0; i < bits; i++) {
            const vi = v ^ (1 << i)
            if (vi > v && (bitmap[vi >>> 5] >>> (vi & 31)) & 1) {
              for (let q = hd[vi]; q >= 0; q = next[q]) compare(r, q)
            }
            if (radius < 2) continue
            for (let j = i + 1; j < bits; j++) {
              const vj = vi ^ (1 << j)
              if (vj > v && (bitmap[vj >>> 5] >>> (vj & 31)) & 1) {
                for (let q = hd[vj]; q >= 0; q = next[q]) compare(r, q)
              }
            }
          }
        }
      } else {
        const firsts = new Map<number, number>()
        for (let r = reps.length - 1; r >= 0; r--) {
          next[r] = firsts.get(values[r]) ?? -1
          firsts.set(values[r], r)
        }
        const near = (r: number, v: number, w: number): void => {
          if (w <= v) return
          for (let q = firsts.get(w) ?? -1; q >= 0; q = next[q]) compare(r, q)
        }
        for (let r = 0; r < reps.length; r++) {
          const v = values[r]
          for (let q = next[r]; q >= 0; q = next[q]) compare(r, q)
          if (radius < 1) continue
          for (let i = 0; i < bits; i++) {
            near(r, v, v ^ (1 << i))
            if (radius < 2) continue
            for (let j = i + 1; j < bits; j++) near(r, v, v ^ (1 << i) ^ (1 << j))
          }
        }
      }
    }
  }
  const out = new Map<number, number[]>()
  slots.forEach((_, i) => {
    const root = find(i)
    const g = out.get(root)
    if (g) g.push(i)
    else out.set(root, [i])
  })
  return [...out.values()].filter((g) => g.length > 1)
}

/** Bits [start, end) of a hash (at most 26 of them) as a number: bit k at position k - start. */
function chunkOf(hashes: Uint32Array, offset: number, start: number, end: number): number {
  const len = end - start
  const word = start >> 5
  const shift = start & 31
  let v = hashes[offset + word] >>> shift
  if (shift + len > 32) v |= hashes[offset + word + 1] << (32 - shift)
  return v & ((1 << len) - 1)
}
