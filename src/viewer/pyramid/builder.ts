import * as os from 'node:os'

import {TilesyncError} from '../../core/errors.js'
import type {BlobRef, Row, TableTree} from '../../snapshot/model.js'
import {tileXY} from '../../snapshot/rows.js'
import type {TreeReader} from '../../snapshot/tree-reader.js'
import {floorDiv, IMAGE_PX, LEAF_TILES, LEAF_ZOOM, MID_ZOOM, tilePixels, tilesPerImage} from '../web/geometry.js'
import type {BuildJob, BuildStatus, PyramidIndex} from '../web/protocol.js'
import {compose, decodeImage, emptyCell, encodeImage, HALF_PX, halve, placeholderPngs, tileCell} from './pixels.js'
import {planPyramid, type PyramidPlan, type Recipe} from './plan.js'
import {type Priority, PriorityLimit} from './priority-limit.js'
import type {PyramidCache} from './pyramid-cache.js'

/** Where the builder reads revisions and images: a RepoView in practice. */
export interface PyramidSource {
  side(revision: string): Promise<{revision: string; state: {snapshot: {tileTable: string | null}; tables: Map<string, TableTree>}; reader: TreeReader}>
  blob(id: string): Promise<Buffer>
}

/** Edge of a tile's cell in a leaf image: 16 tiles across 256 px. */
export const CELL_PX = IMAGE_PX / LEAF_TILES

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47])

/** What making an image leaves for its parent: its half-size copy, unless it was already cached. */
interface Made {
  half?: Buffer
  webp?: Buffer
}
const CACHED: Made = {}

/**
 * Makes the tile pyramid of any revision or of the working database, on demand and in the
 * background: zoom -4 draws each leaf from its tiles' cells, each coarser zoom lays out the
 * half-size copies of the four images below it, and the zooms inside a leaf (-3..-1) are drawn from the
 * tiles themselves when asked for. Every image is cached by its key (see plan.ts), so after a
 * new commit only the leaves that changed and the images above them are made again.
 *
 * All image work goes through one priority queue: what a page waits for first, the rest of
 * a map's build after. It runs in the server's worker thread (viewer-worker.ts), never on
 * the thread that answers requests.
 */
export class PyramidBuilder {
  readonly limit: PriorityLimit
  private readonly recipes = new Map<string, Recipe>()
  private readonly plans = new Map<string, Promise<PyramidPlan>>()
  private readonly inFlight = new Map<string, Promise<Made>>()
  private readonly cellsInFlight = new Map<string, Promise<Buffer>>()
  private readonly cellMemo = new Map<string, Buffer>()
  private cellMemoBytes = 0
  private pendingCells: Array<{id: string; edge: number; rgba: Buffer}> = []
  private readonly jobs: BuildJob[] = []
  private readonly jobRuns = new Map<string, Promise<void>>()
  private readonly listeners = new Set<(layer: string, key: string) => void>()
  /** Layers of the revisions planned so far: images are made for these names only. */
  private readonly layers = new Set<string>()
  private readonly cellMemoryLimit: number
  readonly made = {total: 0, byZoom: {} as Record<string, number>, cells: 0}

  constructor(
    private readonly source: PyramidSource,
    private readonly cache: PyramidCache,
    options: {concurrency?: number; cellMemoryBytes?: number} = {},
  ) {
    // Two image jobs per core keep the cores busy while this thread does its share between
    // them (measured: the rebuild after 100 changed tiles 15% faster than one per core on 2
    // cores); libuv's pool of 4 threads runs them, so more would only queue file reads.
    this.limit = new PriorityLimit(options.concurrency ?? Math.max(2, Math.min(4, 2 * os.availableParallelism())))
    this.cellMemoryLimit = options.cellMemoryBytes ?? 64 * 1024 * 1024
  }

  /** The plan of a revision (or `working`): read from the top of its tree, cached by what it shows. */
  async plan(revision: string): Promise<PyramidPlan> {
    const side = await this.source.side(revision)
    const name = side.state.snapshot.tileTable
    const table = name ? side.state.tables.get(name) : undefined
    const id = `${side.revision}:${table?.name ?? ''}:${table?.root ?? ''}`
    let plan = this.plans.get(id)
    if (!plan) {
      plan = planPyramid(side.revision, table, side.reader)
      plan.catch(() => this.plans.delete(id))
      this.plans.set(id, plan)
      if (this.plans.size > 32) this.plans.delete(this.plans.keys().next().value as string)
    }
    const done = await plan
    for (const [key, recipe] of done.recipes) this.recipes.set(key, recipe)
    for (const layer of done.index.layers) this.layers.add(layer)
    // Recipes are small, but a long session can see many revisions: keep the newest million.
    if (this.recipes.size > 1_000_000) {
      for (const key of this.recipes.keys()) {
        if (this.recipes.size <= 800_000) break
        if (!done.recipes.has(key)) this.recipes.delete(key)
      }
    }
    return done
  }

  async index(revision: string): Promise<PyramidIndex> {
    return (await this.plan(revision)).index
  }

  /** The WebP of an image at zoom -4 or coarser, by the key its index names. */
  async image(layer: string, zoom: number, key: string, priority: Priority = 'now'): Promise<Buffer> {
    const hit = this.cache.image(layer, key)
    if (hit) return hit
    const recipe = this.recipes.get(key)
    if (!recipe || recipe.zoom !== zoom || !this.layers.has(layer)) throw unknownImage()
    const made = await this.ensure(layer, key, priority)
    const bytes = made.webp ?? this.cache.image(layer, key)
    if (!bytes) throw unknownImage()
    this.flush()
    return bytes
  }

  /**
   * The WebP of an image inside a leaf (zoom -3..-1): part (si, sj) of leaf `leafId`, drawn
   * from the tiles' own images at 32 to 128 px each.
   */
  async leafPart(layer: string, zoom: number, leafId: string, si: number, sj: number, priority: Priority = 'now'): Promise<Buffer> {
    const parts = LEAF_TILES / tilesPerImage(zoom)
    if (!(zoom > LEAF_ZOOM && zoom < 0) || !Number.isInteger(si) || !Number.isInteger(sj) || si < 0 || sj < 0 || si >= parts || sj >= parts) {
      throw new TilesyncError('BAD_ARGUMENT', 'no such part of a leaf at this zoom')
    }
    const key = `${leafId}:${zoom}:${si}:${sj}`
    const hit = this.cache.image(layer, key)
    if (hit) return hit
    const recipe = this.leafRecipe(leafId, layer)
    const id = `${layer}\n${key}`
    let job = this.inFlight.get(id)
    if (!job) {
      job = (async (): Promise<Made> => {
        const span = tilesPerImage(zoom)
        const edge = tilePixels(zoom)
        const cells = await this.leafCells(layer, leafId, recipe, edge, priority, {x: si * span, y: sj * span, span})
        const webp = await this.limit.run(priority, () => encodeImage(compose(cells, span, edge)))
        this.store(layer, key, webp)
        this.count(zoom)
        return {webp}
      })().finally(() => this.inFlight.delete(id))
      this.inFlight.set(id, job)
    }
    return (await job).webp!
  }

  /**
   * Zoom 0: a tile as its stored PNG, by its place (i, j) in leaf `leafId`. A tile with no
   * image in this layer is the grey "no image" square; a place with no tile is transparent.
   */
  async tilePng(layer: string, leafId: string, i: number, j: number): Promise<Buffer> {
    if (!Number.isInteger(i) || !Number.isInteger(j) || i < 0 || j < 0 || i >= LEAF_TILES || j >= LEAF_TILES) {
      throw new TilesyncError('BAD_ARGUMENT', 'no such tile in a leaf')
    }
    const recipe = this.leafRecipe(leafId, layer)
    const column = layerColumn(recipe.table, layer)
    for (const row of await recipe.reader.leafRows(leafId)) {
      const xy = tileXY(row, recipe.table.partition)
      if (!xy || xy[0] - floorDiv(xy[0], LEAF_TILES) * LEAF_TILES !== i || xy[1] - floorDiv(xy[1], LEAF_TILES) * LEAF_TILES !== j) continue
      if (column < 0 || row.types[column] !== 'b') return placeholderPngs().empty
      const bytes = await this.source.blob((row.values[column] as BlobRef).id)
      return bytes.subarray(0, 4).equals(PNG_MAGIC) ? bytes : placeholderPngs().empty
    }
    return placeholderPngs().transparent
  }

  /**
   * Makes every image of a revision's pyramid for each layer (the one named first), in the
   * background. One job per revision and layer; asking again while it runs or after it is
   * done starts nothing.
   */
  build(revision: string, layers?: string[]): Promise<void> {
    const run = (async () => {
      const plan = await this.plan(revision)
      const order = [...new Set([...(layers ?? []).filter((l) => plan.index.layers.includes(l)), ...[...plan.index.layers].reverse()])]
      for (const layer of order) await this.buildLayer(plan, layer)
    })()
    return run
  }

  private buildLayer(plan: PyramidPlan, layer: string): Promise<void> {
    const id = `${layer}\n${plan.top ?? ''}`
    const running = this.jobRuns.get(id)
    if (running) return running
    const job: BuildJob = {revision: plan.index.revision, layer, planned: plan.keys.length, done: 0, made: 0, state: 'queued'}
    this.jobs.push(job)
    if (this.jobs.length > 50) this.jobs.splice(0, this.jobs.length - 50)
    const run = (async () => {
      job.state = 'building'
      try {
        const keys = new Set(plan.keys.map((k) => k.key))
        job.done = plan.keys.filter((k) => this.cache.has(layer, k.key)).length
        // Counted per image of this plan and layer, whoever asked for it (this job or a page).
        const onMade = (l: string, key: string): void => {
          if (l !== layer || !keys.has(key)) return
          job.done++
          job.made++
        }
        this.listeners.add(onMade)
        try {
          if (plan.top) await this.ensure(layer, plan.top, 'background')
          // A cached parent hides its children from the walk above: make any still missing.
          for (const k of plan.keys) if (!this.cache.has(layer, k.key)) await this.ensure(layer, k.key, 'background')
        } finally {
          this.listeners.delete(onMade)
          this.flush()
        }
        job.done = plan.keys.length
        job.state = 'done'
      } catch (error) {
        job.state = 'failed'
        job.error = error instanceof Error ? error.message : String(error)
        this.jobRuns.delete(id)
      }
    })()
    this.jobRuns.set(id, run)
    return run
  }

  status(): BuildStatus {
    return {
      building: this.jobs.some((j) => j.state === 'queued' || j.state === 'building'),
      jobs: this.jobs.map((j) => ({...j})),
      made: {total: this.made.total, byZoom: {...this.made.byZoom}, cells: this.made.cells},
    }
  }

  private ensure(layer: string, key: string, priority: Priority): Promise<Made> {
    if (this.cache.has(layer, key)) return Promise.resolve(CACHED)
    const id = `${layer}\n${key}`
    let job = this.inFlight.get(id)
    if (!job) {
      job = this.make(layer, key, priority).finally(() => this.inFlight.delete(id))
      this.inFlight.set(id, job)
    }
    return job
  }

  private async make(layer: string, key: string, priority: Priority): Promise<Made> {
    const recipe = this.recipes.get(key)
    if (!recipe) throw unknownImage()
    let raw: Buffer
    if (recipe.kind === 'leaf') {
      const cells = await this.leafCells(layer, key, recipe, CELL_PX, priority)
      raw = compose(cells, LEAF_TILES, CELL_PX)
    } else {
      const children = recipe.children
      let made: Array<Made | null>
      if (recipe.zoom <= MID_ZOOM) {
        // A level-1 node or more at a time: plenty of work in parallel, and memory for the
        // pixels of only the few images waiting for their siblings.
        made = []
        for (const c of children) made.push(c ? await this.ensure(layer, c, priority) : null)
      } else {
        made = await Promise.all(children.map((c) => (c ? this.ensure(layer, c, priority) : Promise.resolve(null))))
      }
      const halves = await Promise.all(made.map((m, n) => (m === null ? null : m.half ?? this.cachedHalf(layer, children[n]!, priority))))
      raw = compose(halves, 2, HALF_PX)
    }
    const [webp, half] = await Promise.all([this.limit.run(priority, () => encodeImage(raw)), this.limit.run(priority, () => halve(raw))])
    this.store(layer, key, webp, half)
    this.count(recipe.zoom)
    for (const l of this.listeners) l(layer, key)
    if (this.pendingCells.length >= 512) this.flush()
    return {half, webp}
  }

  /** A cached image's half-size copy; made again from its WebP for an image cached without one. */
  private async cachedHalf(layer: string, key: string, priority: Priority): Promise<Buffer | null> {
    const half = this.cache.half(layer, key)
    if (half) return half
    const bytes = this.cache.image(layer, key)
    if (!bytes) return (await this.make(layer, key, priority)).half ?? null
    return this.limit.run(priority, async () => halve(await decodeImage(bytes)))
  }

  private store(layer: string, key: string, webp: Buffer, half: Buffer | null = null): void {
    try {
      this.cache.put(layer, key, webp, half)
    } catch {
      // A full disk: the image is still served, and made again next time.
    }
  }

  private count(zoom: number): void {
    this.made.total++
    this.made.byZoom[String(zoom)] = (this.made.byZoom[String(zoom)] ?? 0) + 1
  }

  private leafRecipe(leafId: string, layer: string): Extract<Recipe, {kind: 'leaf'}> {
    const recipe = this.recipes.get(leafId)
    if (!recipe || recipe.kind !== 'leaf' || !this.layers.has(layer)) throw unknownImage()
    return recipe
  }

  /**
   * The cells of a leaf's tiles in one layer, row by row: all 16x16, or the `part` of
   * span x span tiles starting at (x, y) inside the leaf. Leaf-sized cells come from memory,
   * then from the cache file in one query for the leaf, and only the rest are decoded.
   */
  private async leafCells(layer: string, leafId: string, recipe: Extract<Recipe, {kind: 'leaf'}>, edge: number, priority: Priority, part?: {x: number; y: number; span: number}): Promise<Array<Buffer | null>> {
    const span = part?.span ?? LEAF_TILES
    const cells: Array<Buffer | null> = Array(span * span).fill(null)
    const column = layerColumn(recipe.table, layer)
    const rows: Row[] = await recipe.reader.leafRows(leafId)
    const wanted = new Map<string, number[]>()
    for (const row of rows) {
      const xy = tileXY(row, recipe.table.partition)
      if (!xy) continue
      const cx = xy[0] - floorDiv(xy[0], LEAF_TILES) * LEAF_TILES - (part?.x ?? 0)
      const cy = xy[1] - floorDiv(xy[1], LEAF_TILES) * LEAF_TILES - (part?.y ?? 0)
      if (cx < 0 || cy < 0 || cx >= span || cy >= span) continue
      const at = cy * span + cx
      if (column < 0 || row.types[column] !== 'b') {
        cells[at] = emptyCell(edge)
        continue
      }
      const id = (row.values[column] as BlobRef).id
      const places = wanted.get(id)
      if (places) places.push(at)
      else wanted.set(id, [at])
    }
    const keep = edge === CELL_PX
    const place = (id: string, cell: Buffer): void => {
      for (const at of wanted.get(id)!) cells[at] = cell
    }
    const missing: string[] = []
    for (const id of wanted.keys()) {
      const hit = keep ? this.cellMemo.get(`${edge}:${id}`) : undefined
      if (hit) place(id, hit)
      else missing.push(id)
    }
    const onDisk = keep ? this.cache.cells(missing, edge) : new Map<string, Buffer>()
    const jobs: Array<Promise<void>> = []
    for (const id of missing) {
      const disk = onDisk.get(id)
      if (disk) {
        this.remember(`${edge}:${id}`, disk)
        place(id, disk)
      } else {
        jobs.push(this.cell(id, edge, priority, keep).then((c) => place(id, c)))
      }
    }
    await Promise.all(jobs)
    return cells
  }

  /** A tile image decoded into a cell of `edge` px; leaf-sized cells are kept (memory and disk) by image id. */
  private cell(id: string, edge: number, priority: Priority, keep: boolean): Promise<Buffer> {
    const memoKey = `${edge}:${id}`
    const hit = this.cellMemo.get(memoKey)
    if (hit) return Promise.resolve(hit)
    let job = this.cellsInFlight.get(memoKey)
    if (!job) {
      job = (async () => {
        const bytes = await this.source.blob(id)
        if (!bytes.subarray(0, 4).equals(PNG_MAGIC)) return emptyCell(edge)
        const rgba = await this.limit.run(priority, () => tileCell(bytes, edge))
        this.made.cells++
        if (keep) {
          this.remember(memoKey, rgba)
          this.pendingCells.push({id, edge, rgba})
        }
        return rgba
      })().finally(() => this.cellsInFlight.delete(memoKey))
      this.cellsInFlight.set(memoKey, job)
    }
    return job
  }

  private remember(key: string, rgba: Buffer): void {
    this.cellMemo.set(key, rgba)
    this.cellMemoBytes += rgba.length
    for (const [k, v] of this.cellMemo) {
      if (this.cellMemoBytes <= this.cellMemoryLimit) break
      this.cellMemo.delete(k)
      this.cellMemoBytes -= v.length
    }
  }

  /** Cells go to disk in batches (one transaction per few hundred), and so do images. */
  flush(): void {
    const batch = this.pendingCells
    this.pendingCells = []
    try {
      this.cache.putCells(batch)
      this.cache.flush()
    } catch {
      // A full disk costs the disk copy only.
    }
  }
}

/** The column index of an image layer by name; -1 when this table has no such layer. */
export function layerColumn(table: TableTree, layer: string): number {
  for (const i of table.layers) if (table.columns[i].name === layer) return i
  return -1
}

function unknownImage(): TilesyncError {
  return new TilesyncError('OBJECT_MISSING', 'no such map image on this server', {hint: 'reload the page: the server was restarted or the map changed'})
}
