/**
 * The JSON the viewer's server sends and the page reads. Types only (no code), compiled for
 * Node and for the browser, so both sides agree on every field. Fields are added, never
 * renamed: a page ignores what it does not know, and a field a newer server adds (a layer's
 * history, a change's kind) reaches the page without a format change.
 */

/** `GET /api/pyramid?rev=R`: where the images of one revision (or the working database) are. */
export interface PyramidIndex {
  /** The commit id, or `working`. */
  revision: string
  tileTable: string | null
  /** Image columns, in table order. */
  layers: string[]
  /** Rows in the tile table. */
  count: number
  /** The tile at map point (0, 0): a multiple of 256 in each axis, the top left of the map's first level-1 node. */
  origin: [number, number]
  /** The tiles' bounds, inclusive [x0, y0, x1, y1]; null when there are none. */
  bounds: [number, number, number, number] | null
  /** The coarsest zoom: the whole map in one image. */
  minZoom: number
  /**
   * For zoom -4 (one leaf per image) and every coarser zoom down to `minZoom`: the images that
   * exist, as [i, j, key] with i, j counted from `origin` at that zoom. At -4 the key is the
   * leaf's node id, at -8 the level-1 node's; in between and beyond, an id derived from the
   * ids of the four images below it. An image never changes for a key, so a new revision
   * reuses every image of the regions it did not change.
   */
  levels: PyramidLevel[]
}

export interface PyramidLevel {
  zoom: number
  images: Array<[number, number, string]>
}

/** `GET /api/pyramid/status`: what the background builder is doing, with exact counts. */
export interface BuildStatus {
  /** True while images are being made for any revision. */
  building: boolean
  /** Per revision and layer asked for (newest last): images planned, done so far (made or already cached), and made. */
  jobs: BuildJob[]
  /** Images made since the server started, per zoom ("-4", "-5", ...) and in total; cells are tiles decoded into map cells. */
  made: {total: number; byZoom: Record<string, number>; cells: number}
}

export interface BuildJob {
  revision: string
  layer: string
  planned: number
  done: number
  made: number
  state: 'queued' | 'building' | 'done' | 'failed'
  error?: string
}

/** One changed tile as `/api/diff` reports it (a `RowChangeView` of `tilesync diff --json`). */
export interface TileChange {
  x?: number
  y?: number
  status: 'added' | 'modified' | 'deleted'
  /**
   * How the tile changed, when the server knows more than the status (for example
   * `re-encoded` for an image whose pixels did not change). The page outlines a tile by
   * `kind` when present, else by `status`, and draws kinds it does not know in a neutral style.
   */
  kind?: string
  /** Per image layer that changed: added (it had no image), removed (set to NULL: the layer taken off the tile), modified. */
  layers: Array<{layer: string; change?: 'added' | 'removed' | 'modified'; old: ImageRef | null; new: ImageRef | null}>
  columns: string[]
}

export interface ImageRef {
  id: string
  size: number
}

export interface DiffResponse {
  from: string
  to: string
  changes: {
    tiles: TileChange[]
    summary: {tilesAdded: number; tilesModified: number; tilesDeleted: number; rowsChanged: number}
  }
}

export interface TileVersionView {
  commit: string
  message: string
  author: string
  date: string
  status: 'added' | 'modified' | 'deleted'
  layers: Record<string, ImageRef | null>
  /** Per layer that changed in this version. */
  layerChanges?: Record<string, 'added' | 'removed' | 'modified'>
  /** The same as sentences: "dark_mode removed from tile 3,4". */
  summary?: string[]
}

export interface TileHistoryView {
  x: number
  y: number
  layers: string[]
  versions: TileVersionView[]
}

export interface CommitView {
  id: string
  parents: string[]
  author: string
  date: string
  message: string
  tilesChanged: number
  refs: string[]
}

export interface RefsView {
  head: string | null
  branch: string | null
  branches: Array<{name: string; id: string}>
  tags: Array<{name: string; id: string}>
}

/** `/api/perceptual`: what happened to the images of each modified tile (see `tilesync diff --perceptual`). */
export interface PerceptualResponse {
  from: string
  to: string
  threshold: number
  tiles: Array<{x: number; y: number; verdict: 'pixels-identical' | 'nearly-identical' | 'changed'}>
}
