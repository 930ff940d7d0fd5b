import {ChangesLayer} from './changes-layer.js'
import {TILE_CRS, tileLatLng, tileOf} from './crs.js'
import {short} from './dom.js'
import {PyramidLayer} from './pyramid-layer.js'
import type {PyramidIndex, TileChange} from './protocol.js'

/**
 * One Leaflet map showing a revision's pyramid in one layer, optionally with a second
 * revision over it (the swipe view) and the changed tiles outlined. Pan, zoom, keyboard,
 * touch and attribution are Leaflet's own.
 */
export class MapPane {
  readonly map: L.Map
  origin: [number, number] = [0, 0]
  base?: PyramidLayer
  over?: PyramidLayer
  changes?: ChangesLayer
  private clipX = 0.5

  constructor(readonly container: HTMLElement, onTileClick: (x: number, y: number) => void) {
    this.map = L.map(container, {
      crs: TILE_CRS,
      zoomSnap: 1,
      minZoom: -24,
      maxZoom: 4,
      attributionControl: true,
      zoomControl: true,
      keyboard: true,
      // Images appear at once: no half-faded map in a screenshot, and nothing to wait for.
      fadeAnimation: false,
      // Tiles are pixel art at zoom > 0: whole zoom steps keep them sharp.
      wheelPxPerZoomLevel: 120,
    })
    // Leaflet needs a view before layers can be added; the page places the map right after.
    this.map.setView([0, 0], 0, {animate: false})
    this.map.attributionControl.setPrefix('<a href="https://leafletjs.com" title="A JavaScript library for interactive maps">Leaflet</a>')
    this.map.createPane('after')
    this.map.getPane('after')!.style.zIndex = '250'
    this.map.on('click', (e: L.LeafletMouseEvent) => {
      const [x, y] = tileOf(e.latlng, this.origin)
      onTileClick(x, y)
    })
    this.map.on('move zoomend resize', () => this.updateClip())
  }

  /** Shows `index` in `layer`; with `over`, a second revision above it, cut at the swipe line. */
  show(index: PyramidIndex, layer: string, origin: [number, number], over?: PyramidIndex): void {
    this.origin = origin
    for (const l of [this.base, this.over]) if (l) this.map.removeLayer(l)
    this.base = new PyramidLayer(index, layer, origin, {attribution: attribution(index, layer)})
    this.base.addTo(this.map)
    this.over = over ? new PyramidLayer(over, layer, origin, {pane: 'after', attribution: attribution(over, layer)}) : undefined
    this.over?.addTo(this.map)
    this.updateClip()
  }

  setChanges(changes: TileChange[] | null): void {
    if (this.changes) this.map.removeLayer(this.changes)
    this.changes = changes ? new ChangesLayer(changes, this.origin) : undefined
    this.changes?.addTo(this.map)
  }

  /** The swipe line, as a fraction of the map's width from its left edge. */
  setClip(fraction: number): void {
    this.clipX = Math.max(0, Math.min(1, fraction))
    this.updateClip()
  }

  get clipFraction(): number {
    return this.clipX
  }

  private updateClip(): void {
    const pane = this.map.getPane('after')
    if (!pane) return
    if (!this.over) {
      pane.style.clip = ''
      return
    }
    // Clip in the pane's own coordinates, which move with the map (as leaflet-side-by-side does).
    const size = this.map.getSize()
    const nw = this.map.containerPointToLayerPoint([0, 0])
    const se = this.map.containerPointToLayerPoint(size)
    const left = nw.x + size.x * this.clipX
    pane.style.clip = `rect(${nw.y}px, ${se.x}px, ${se.y}px, ${left}px)`
  }

  /** Shows tiles x0..x1, y0..y1 (inclusive) as large as whole zoom steps allow. */
  fitTiles(x0: number, y0: number, x1: number, y1: number): void {
    this.map.fitBounds(L.latLngBounds(tileLatLng(x0, y0, this.origin), tileLatLng(x1 + 1, y1 + 1, this.origin)), {animate: false, padding: [4, 4]})
  }

  /** Centres tile (x, y) at `zoom`. */
  viewTile(x: number, y: number, zoom: number): void {
    this.map.setView(tileLatLng(x + 0.5, y + 0.5, this.origin), zoom, {animate: false})
  }

  /** The tile at the map's centre and the zoom, for the page's address. */
  centreTile(): {x: number; y: number; z: number} {
    const [x, y] = tileOf(this.map.getCenter(), this.origin)
    return {x, y, z: this.map.getZoom()}
  }

  /** Where tile (x, y) is drawn: its top left corner in page (CSS) pixels, and its edge. */
  screenOf(x: number, y: number): {x: number; y: number; size: number} {
    const a = this.map.latLngToContainerPoint(tileLatLng(x, y, this.origin))
    const b = this.map.latLngToContainerPoint(tileLatLng(x + 1, y + 1, this.origin))
    const box = this.container.getBoundingClientRect()
    return {x: box.left + a.x, y: box.top + a.y, size: b.x - a.x}
  }

  loading(): boolean {
    return [this.base, this.over, this.changes].some((l) => l?.isLoading())
  }
}

function attribution(index: PyramidIndex, layer: string): string {
  return `tilesync · ${index.revision === 'working' ? 'working database' : short(index.revision)} · ${layer.replace(/[<>&"]/g, '')}`
}
