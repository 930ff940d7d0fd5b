/**
 * The tile pyramid's geometry, shared by the server (which builds the images) and the page
 * (which asks for them). Zoom levels are Leaflet's: at zoom z one 256 px map image covers
 * 2^-z tiles per side, so zoom 0 is one tile per image and every level out halves the scale.
 * Three levels line up with the history's spatial tree (src/snapshot/rows.ts): a leaf holds
 * 16x16 tiles (zoom -4), a level-1 node 16x16 leaves (zoom -8), and the root everything.
 *
 * This file is plain TypeScript with no imports: it is compiled for Node and for the browser.
 */

/** Edge of every map image, in CSS pixels. */
export const IMAGE_PX = 256

/** One tile per image: the stored PNG itself. */
export const TILE_ZOOM = 0
/** One leaf node (16x16 tiles) per image. */
export const LEAF_ZOOM = -4
/** One level-1 node (256x256 tiles) per image. */
export const MID_ZOOM = -8

/** Tiles per side of a leaf, and of a level-1 node. */
export const LEAF_TILES = 16
export const MID_TILES = 256

/** How far out the pyramid goes at most: 2^24 tiles per side in one image. */
export const MIN_ZOOM_LIMIT = -24

/** Tiles per side of one image at zoom z (z <= 0). */
export function tilesPerImage(zoom: number): number {
  return 2 ** -zoom
}

/** Pixels per tile inside one image at zoom z, for -4 <= z <= 0. */
export function tilePixels(zoom: number): number {
  return IMAGE_PX / tilesPerImage(zoom)
}

export function floorDiv(a: number, b: number): number {
  return Math.floor(a / b)
}

/**
 * The image at (zoom, i, j) of a map whose origin is tile (ox, oy): which tiles it covers,
 * [x0, y0] inclusive at the top left, and how many per side.
 */
export function imageTiles(zoom: number, i: number, j: number, origin: readonly [number, number]): {x0: number; y0: number; span: number} {
  const span = tilesPerImage(zoom)
  return {x0: origin[0] + i * span, y0: origin[1] + j * span, span}
}

/** For zooms inside a leaf (-3..0): the leaf that holds the image, and the image's place in it. */
export function leafPart(zoom: number, i: number, j: number, origin: readonly [number, number]): {lx: number; ly: number; si: number; sj: number} {
  const {x0, y0, span} = imageTiles(zoom, i, j, origin)
  const lx = floorDiv(x0, LEAF_TILES)
  const ly = floorDiv(y0, LEAF_TILES)
  return {lx, ly, si: (x0 - lx * LEAF_TILES) / span, sj: (y0 - ly * LEAF_TILES) / span}
}
