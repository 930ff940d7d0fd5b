import {TilesyncError} from '../core/errors.js'
import {HASH_BITS, HASH_WORDS, hashHex, NEAR_DISTANCE} from '../perceptual/dhash.js'
import type {EnsureStats} from '../perceptual/signatures.js'
import type {SignatureIndex} from '../perceptual/signature-index.js'
import type {TableTree} from '../snapshot/model.js'
import {openSignatures, signTileImages} from './sign-images.js'
import {checkLayer, ImageReader, layerNames, type TileImage, tileImages, tileTableOf} from './tile-images.js'
import type {TreeState, Workspace} from './workspace.js'

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
  const images: TileImage[] = []
  for await (const image of tileImages(at.state, ws.reader, layers)) images.push(image)
  const sigs = openSignatures(ws)
  const reader = new ImageReader(ws)
  try {
    const stats = await signTileImages(sigs, images, reader)
    return {revision: at.id, images, index: sigs.index, signatures: stats}
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
  const own: TileImage[] = []
  for await (const image of tileImages(at.state, ws.reader, options.layer ? [options.layer] : undefined, [x, y, x, y])) own.push(image)
  const query = own.at(-1)
  if (!query) {
    throw new TilesyncError('TILE_MISSING', `tile ${x},${y} has no ${options.layer ? `${options.layer} ` : ''}image at ${revision}`, {hint: '`tilesync show REV --tile X,Y` shows what the tile holds'})
  }
  const layer = query.layer
  const loaded = await loadSigned(ws, at, [layer])
  const {index} = loaded
  const q = index.slotOf(query.id)
  if (q === undefined || !index.isImage(q)) {
    throw new TilesyncError('BAD_ARGUMENT', `tile ${x},${y} ${layer} at ${revision} is not an image tilesync can decode`, {hint: `\`tilesync show ${revision} --tile ${x},${y} --layer ${layer} -o file\` writes it out`})
  }
  // One pass keeping the best `limit`: a sorted insert into a short array beats sorting 100,000.
  // Rank: distance, then the same pixels before merely the same hash, then position.
  const best: Candidate[] = []
  let compared = 0
  for (const image of loaded.images) {
    if (image.layer !== layer || (image.x === x && image.y === y)) continue
    const slot = index.slotOf(image.id)
    if (slot === undefined || !index.isImage(slot)) continue
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
 * joined transitively, largest group first. Candidate pairs come from multi-index hashing:
 * split the 128 bits into threshold+1 chunks; two hashes that close agree on at least one
 * whole chunk, so only hashes sharing a chunk value are compared, not every pair.
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
    const members = loaded.images.filter((i) => i.layer === layer)
      .map((image) => ({image, slot: loaded.index.slotOf(image.id)}))
      .filter((m): m is {image: TileImage; slot: number} => m.slot !== undefined && loaded.index.isImage(m.slot))
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

/** Connected groups (of 2 or more) of `slots` within `threshold`; returns indices into `slots`. */
export function groupNear(index: SignatureIndex, slots: number[], threshold: number): number[][] {
  const parent = slots.map((_, i) => i)
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
  // Equal hashes first (copies, re-encodings): one representative each for the chunk search.
  const exact = new Map<string, number>()
  const reps: number[] = []
  slots.forEach((slot, i) => {
    const key = hashHex(index.hashes, slot * HASH_WORDS)
    const first = exact.get(key)
    if (first === undefined) {
      exact.set(key, i)
      reps.push(i)
    } else join(first, i)
  })
  if (threshold > 0) {
    const chunks = threshold + 1
    for (let c = 0; c < chunks; c++) {
      const start = Math.floor((c * HASH_BITS) / chunks)
      const end = Math.floor(((c + 1) * HASH_BITS) / chunks)
      const buckets = new Map<number, number[]>()
      for (const i of reps) {
        const v = bits(index.hashes, slots[i] * HASH_WORDS, start, end)
        const b = buckets.get(v)
        if (b) b.push(i)
        else buckets.set(v, [i])
      }
      for (const b of buckets.values()) {
        for (let p = 0; p < b.length; p++) {
          for (let r = p + 1; r < b.length; r++) {
            if (find(b[p]) !== find(b[r]) && index.distance(slots[b[p]], slots[b[r]]) <= threshold) join(b[p], b[r])
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

/** Bits [start, end) of a hash (at most 31 of them) as a number. */
function bits(hashes: Uint32Array, offset: number, start: number, end: number): number {
  let v = 0
  for (let k = start; k < end; k++) v = (v << 1) | ((hashes[offset + (k >> 5)] >>> (k & 31)) & 1)
  return v >>> 0
}
