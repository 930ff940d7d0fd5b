import {TilesyncError} from '../core/errors.js'
import {HASH_BITS, NEAR_DISTANCE} from '../perceptual/dhash.js'
import type {EnsureStats} from '../perceptual/signatures.js'
import type {ChangeSet} from '../snapshot/change-set.js'
import {openSignatures, signTileImages} from './sign-images.js'
import {ImageReader, type TileImage} from './tile-images.js'
import type {TreeState} from '../snapshot/tree-state.js'
import type {Workspace} from '../workspace/workspace.js'

/**
 * What a modified image really is: the same pixels in other bytes (re-encoded), a picture
 * within the threshold of the old one, or a changed picture. The first is decided from the
 * decoded pixels themselves (their digest), never from the perceptual hash.
 */
export type ImageVerdict = 'pixels-identical' | 'nearly-identical' | 'changed'

export interface PerceptualLayer {
  layer: string
  old: string | null
  new: string | null
  verdict: ImageVerdict
  /** Differing bits of the perceptual hashes (0..128); null when one side is no image or cannot be decoded. */
  distance: number | null
}

export interface PerceptualTile {
  key: string
  x?: number
  y?: number
  /** The strongest verdict over its changed layers: changed > nearly identical > pixels identical. */
  verdict: ImageVerdict
  layers: PerceptualLayer[]
}

export interface PerceptualDiff {
  threshold: number
  counts: {pixelsIdentical: number; nearlyIdentical: number; changed: number; noImageChange: number}
  /** Modified tiles with at least one changed layer, in the diff's order. */
  tiles: PerceptualTile[]
  signatures: EnsureStats
}

const RANK: Record<ImageVerdict, number> = {'pixels-identical': 0, 'nearly-identical': 1, changed: 2}

export function checkThreshold(threshold: number): void {
  if (!Number.isInteger(threshold) || threshold < 0 || threshold > HASH_BITS) {
    throw new TilesyncError('BAD_ARGUMENT', `--threshold must be an integer from 0 to ${HASH_BITS} (differing bits), got ${threshold}`, {hint: `the default is ${NEAR_DISTANCE}`})
  }
}

/**
 * Sorts the modified tiles of a diff by what happened to their images. `working`: the new
 * side's state when it is the working database (its new images are read from the database).
 */
export async function perceptualDiff(ws: Workspace, changes: ChangeSet, options: {threshold?: number; working?: TreeState} = {}): Promise<PerceptualDiff> {
  const threshold = options.threshold ?? NEAR_DISTANCE
  checkThreshold(threshold)
  const modified = changes.tiles.filter((t) => t.status === 'modified')
  const images: TileImage[] = []
  for (const t of modified) {
    if (t.x === undefined || t.y === undefined) continue
    for (const l of t.layers) {
      if (l.old && l.new) images.push({x: t.x, y: t.y, layer: l.layer, id: l.old.id}, {x: t.x, y: t.y, layer: l.layer, id: l.new.id})
    }
  }
  const signatures = openSignatures(ws)
  const reader = new ImageReader(ws, options.working ? {state: options.working} : undefined)
  let stats: EnsureStats
  try {
    stats = (await signTileImages(signatures, images, reader)).stats
  } finally {
    reader.close()
  }
  const {index} = signatures
  const out: PerceptualDiff = {threshold, counts: {pixelsIdentical: 0, nearlyIdentical: 0, changed: 0, noImageChange: 0}, tiles: [], signatures: stats}
  for (const t of modified) {
    if (t.layers.length === 0) {
      out.counts.noImageChange++
      continue
    }
    const layers = t.layers.map((l): PerceptualLayer => {
      const a = l.old ? index.slotOf(l.old.id) : undefined
      const b = l.new ? index.slotOf(l.new.id) : undefined
      const base = {layer: l.layer, old: l.old?.id ?? null, new: l.new?.id ?? null}
      if (a === undefined || b === undefined || !index.isImage(a) || !index.isImage(b)) return {...base, verdict: 'changed', distance: null}
      const distance = index.distance(a, b)
      const verdict: ImageVerdict = index.samePixels(a, b) ? 'pixels-identical' : distance <= threshold ? 'nearly-identical' : 'changed'
      return {...base, verdict, distance}
    })
    const verdict = layers.reduce<ImageVerdict>((w, l) => (RANK[l.verdict] > RANK[w] ? l.verdict : w), 'pixels-identical')
    out.tiles.push({key: t.key, x: t.x, y: t.y, verdict, layers})
    if (verdict === 'pixels-identical') out.counts.pixelsIdentical++
    else if (verdict === 'nearly-identical') out.counts.nearlyIdentical++
    else out.counts.changed++
  }
  return out
}
