import {LEAF_TILES, LEAF_ZOOM, leafPart, MID_ZOOM, TILE_ZOOM} from './geometry.js'
import type {PyramidIndex} from './protocol.js'

/**
 * A revision's tile pyramid as a Leaflet grid layer. It asks only for images the index
 * names (a place with no tiles costs no request), and at zooms past 0 Leaflet enlarges the
 * stored PNGs. `mapOrigin` is the map's origin; a revision whose own origin differs (the
 * other side of a comparison) shifts its images onto it, and below zoom -8, where its
 * images would not line up, shows its zoom -8 images smaller.
 */
export class PyramidLayer extends L.GridLayer {
  private readonly byZoom = new Map<number, Map<string, string>>()
  readonly requested: string[] = []

  constructor(readonly index: PyramidIndex, readonly layer: string, readonly mapOrigin: readonly [number, number], options: L.GridLayerOptions = {}) {
    const aligned = mapOrigin[0] === index.origin[0] && mapOrigin[1] === index.origin[1]
    super({
      tileSize: 256,
      noWrap: true,
      maxNativeZoom: TILE_ZOOM,
      minNativeZoom: aligned ? index.minZoom : Math.max(index.minZoom, MID_ZOOM),
      minZoom: index.minZoom - 2,
      maxZoom: 4,
      className: 'pyramid',
      keepBuffer: 1,
      ...options,
    })
    for (const level of index.levels) {
      this.byZoom.set(level.zoom, new Map(level.images.map(([i, j, key]) => [`${i},${j}`, key])))
    }
  }

  /** The URL of the image at grid place (x, y) of zoom z, or null where the map has nothing. */
  urlFor(z: number, x: number, y: number): string | null {
    const span = 2 ** -z
    // Grid places counted from the map's origin, as this revision counts them.
    const dx = (this.mapOrigin[0] - this.index.origin[0]) / span
    const dy = (this.mapOrigin[1] - this.index.origin[1]) / span
    if (!Number.isInteger(dx) || !Number.isInteger(dy)) return null
    const i = x + dx
    const j = y + dy
    const layer = encodeURIComponent(this.layer)
    if (z <= LEAF_ZOOM) {
      const key = this.byZoom.get(z)?.get(`${i},${j}`)
      return key ? `/api/pyramid/${layer}/${z}/${key}.webp` : null
    }
    const part = leafPart(z, i, j, this.index.origin)
    const leaves = this.byZoom.get(LEAF_ZOOM)
    const leaf = leaves?.get(`${part.lx - this.index.origin[0] / LEAF_TILES},${part.ly - this.index.origin[1] / LEAF_TILES}`)
    if (!leaf) return null
    return z === TILE_ZOOM ? `/api/pyramid/${layer}/0/${leaf}/${part.si}/${part.sj}.png` : `/api/pyramid/${layer}/${z}/${leaf}/${part.si}/${part.sj}.webp`
  }

  protected override createTile(coords: L.Coords, done: L.DoneCallback): HTMLElement {
    const url = this.urlFor(coords.z, coords.x, coords.y)
    if (!url) {
      const empty = document.createElement('div')
      setTimeout(() => done(undefined, empty), 0)
      return empty
    }
    const img = document.createElement('img')
    img.alt = ''
    img.draggable = false
    img.onload = () => done(undefined, img)
    img.onerror = () => done(new Error(`could not load ${url}`), img)
    this.requested.push(url)
    img.src = url
    return img
  }
}
