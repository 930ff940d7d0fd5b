import {hashBytes} from '../../core/hash.js'
import type {TableTree} from '../../snapshot/model.js'
import {tileXY} from '../../snapshot/rows.js'
import type {TreeReader} from '../../snapshot/tree-reader.js'
import {LEAF_TILES, LEAF_ZOOM, MID_TILES, MID_ZOOM, MIN_ZOOM_LIMIT} from '../web/geometry.js'
import type {PyramidIndex, PyramidLevel} from '../web/protocol.js'

/**
 * How each image of a revision's pyramid is made. A leaf image (zoom -4) is drawn from the
 * leaf's rows; every coarser image joins the four images below it, so a parent's recipe is
 * its children's keys. Recipes depend only on the keys, never on the revision: two revisions
 * that share a region share its images.
 */
export type Recipe =
  | {kind: 'leaf'; zoom: number; table: TableTree; reader: TreeReader}
  | {kind: 'join'; zoom: number; children: Array<string | null>}

export interface PyramidPlan {
  index: PyramidIndex
  recipes: Map<string, Recipe>
  /** Every image key, finest zoom first. */
  keys: Array<{zoom: number; key: string}>
  /** The key of the single image at minZoom, or null for an empty map. */
  top: string | null
}

/** An image that joins four: its id is derived from theirs (and its zoom), with no data of its own. */
export function joinKey(zoom: number, children: Array<string | null>): string {
  return hashBytes(Buffer.from(`tilesync-pyramid-1:${zoom}:${children.map((c) => c ?? '-').join(',')}`))
}

function parseLabel(label: string): [number, number] | null {
  if (label.startsWith('#')) return null
  const [a, b] = label.split(',').map(Number)
  return Number.isSafeInteger(a) && Number.isSafeInteger(b) ? [a, b] : null
}

/**
 * The pyramid of one tile table, read from its tree's two upper levels only (the root lists
 * the level-1 nodes, each of those its leaves): no leaf is read to plan a map.
 */
export async function planPyramid(revision: string, table: TableTree | undefined, reader: TreeReader): Promise<PyramidPlan> {
  const index: PyramidIndex = {revision, tileTable: table?.name ?? null, layers: [], count: 0, origin: [0, 0], bounds: null, minZoom: LEAF_ZOOM, levels: []}
  const plan: PyramidPlan = {index, recipes: new Map(), keys: [], top: null}
  if (!table || table.partition.kind !== 'spatial' || !table.root) return plan
  index.layers = table.layers.map((i) => table.columns[i].name)
  index.count = table.rowCount

  const mids: Array<{mx: number; my: number; id: string}> = []
  for (const e of await reader.innerEntries(table.root)) {
    const m = parseLabel(e.label)
    if (m) mids.push({mx: m[0], my: m[1], id: e.id})
  }
  if (mids.length === 0) return plan
  const leafOf = MID_TILES / LEAF_TILES
  let mx0 = Infinity
  let my0 = Infinity
  for (const m of mids) {
    mx0 = Math.min(mx0, m.mx)
    my0 = Math.min(my0, m.my)
  }
  index.origin = [mx0 * MID_TILES, my0 * MID_TILES]
  const midAt = new Map(mids.map((m) => [`${m.mx - mx0},${m.my - my0}`, m.id]))

  // Zoom -4: one image per leaf, keyed by the leaf's id.
  let level = new Map<string, {i: number; j: number; key: string}>()
  const leaves: Array<{lx: number; ly: number; id: string}> = []
  let lx0 = Infinity
  let ly0 = Infinity
  let lx1 = -Infinity
  let ly1 = -Infinity
  for (const m of mids) {
    for (const e of await reader.innerEntries(m.id)) {
      const l = parseLabel(e.label)
      if (!l) continue
      const i = l[0] - mx0 * leafOf
      const j = l[1] - my0 * leafOf
      level.set(`${i},${j}`, {i, j, key: e.id})
      leaves.push({lx: l[0], ly: l[1], id: e.id})
      plan.recipes.set(e.id, {kind: 'leaf', zoom: LEAF_ZOOM, table, reader})
      lx0 = Math.min(lx0, l[0])
      ly0 = Math.min(ly0, l[1])
      lx1 = Math.max(lx1, l[0])
      ly1 = Math.max(ly1, l[1])
    }
  }
  if (level.size === 0) return plan
  index.bounds = await exactBounds(table, reader, leaves, [lx0, ly0, lx1, ly1])

  const levels: PyramidLevel[] = []
  let zoom = LEAF_ZOOM
  for (;;) {
    const images = [...level.values()].sort((a, b) => a.j - b.j || a.i - b.i)
    levels.push({zoom, images: images.map((e) => [e.i, e.j, e.key])})
    for (const e of images) plan.keys.push({zoom, key: e.key})
    const single = level.size === 1 && level.has('0,0')
    if ((single && zoom <= MID_ZOOM) || zoom <= MIN_ZOOM_LIMIT) break
    // The next level out: each image joins the 2x2 below it (top left, top right, bottom left, bottom right).
    const parents = new Map<string, {i: number; j: number; children: Array<string | null>}>()
    for (const e of level.values()) {
      const pi = Math.floor(e.i / 2)
      const pj = Math.floor(e.j / 2)
      let p = parents.get(`${pi},${pj}`)
      if (!p) {
        p = {i: pi, j: pj, children: [null, null, null, null]}
        parents.set(`${pi},${pj}`, p)
      }
      p.children[(e.j - pj * 2) * 2 + (e.i - pi * 2)] = e.key
    }
    zoom--
    const next = new Map<string, {i: number; j: number; key: string}>()
    for (const [at, p] of parents) {
      // At zoom -8 an image shows exactly one level-1 node: it goes by that node's id.
      const key = zoom === MID_ZOOM ? midAt.get(at) ?? joinKey(zoom, p.children) : joinKey(zoom, p.children)
      plan.recipes.set(key, {kind: 'join', zoom, children: p.children})
      next.set(at, {i: p.i, j: p.j, key})
    }
    level = next
  }
  index.levels = levels
  index.minZoom = zoom
  plan.top = [...level.values()][0]?.key ?? null
  return plan
}

/**
 * The tiles' exact bounds: only the leaves on the edges of the leaf grid can hold the
 * outermost tiles, so only those are read (about 4 x sqrt(leaves) of them).
 */
async function exactBounds(table: TableTree, reader: TreeReader, leaves: Array<{lx: number; ly: number; id: string}>, [lx0, ly0, lx1, ly1]: [number, number, number, number]): Promise<[number, number, number, number]> {
  const b: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity]
  for (const leaf of leaves) {
    if (leaf.lx !== lx0 && leaf.lx !== lx1 && leaf.ly !== ly0 && leaf.ly !== ly1) continue
    for (const row of await reader.leafRows(leaf.id)) {
      const xy = tileXY(row, table.partition)
      if (!xy) continue
      if (leaf.lx === lx0) b[0] = Math.min(b[0], xy[0])
      if (leaf.ly === ly0) b[1] = Math.min(b[1], xy[1])
      if (leaf.lx === lx1) b[2] = Math.max(b[2], xy[0])
      if (leaf.ly === ly1) b[3] = Math.max(b[3], xy[1])
    }
  }
  // A leaf with no tile a row can be placed by (never written by tilesync) leaves the leaf's edge.
  return [
    Number.isFinite(b[0]) ? b[0] : lx0 * LEAF_TILES, Number.isFinite(b[1]) ? b[1] : ly0 * LEAF_TILES,
    Number.isFinite(b[2]) ? b[2] : lx1 * LEAF_TILES + LEAF_TILES - 1, Number.isFinite(b[3]) ? b[3] : ly1 * LEAF_TILES + LEAF_TILES - 1,
  ]
}
