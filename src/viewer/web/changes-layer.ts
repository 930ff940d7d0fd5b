import {kindOf, styleOf} from './change-kinds.js'
import {floorDiv, LEAF_TILES} from './geometry.js'
import type {TileChange} from './protocol.js'

interface Placed {
  x: number
  y: number
  kind: string
}

/**
 * The changed tiles of a comparison, outlined by kind on canvas tiles drawn in the page: no
 * image requests, however many tiles changed. Zoomed far out, where a tile is a few pixels,
 * each change is a filled dot of its colour instead of a frame.
 */
export class ChangesLayer extends L.GridLayer {
  private readonly byLeaf = new Map<string, Placed[]>()
  private readonly all: Placed[] = []

  constructor(changes: TileChange[], readonly mapOrigin: readonly [number, number], options: L.GridLayerOptions = {}) {
    super({tileSize: 256, noWrap: true, minZoom: -30, maxZoom: 4, className: 'changes', pane: 'overlayPane', ...options})
    for (const c of changes) {
      if (c.x === undefined || c.y === undefined) continue
      const p = {x: c.x, y: c.y, kind: kindOf(c)}
      this.all.push(p)
      const key = `${floorDiv(c.x, LEAF_TILES)},${floorDiv(c.y, LEAF_TILES)}`
      let list = this.byLeaf.get(key)
      if (!list) this.byLeaf.set(key, (list = []))
      list.push(p)
    }
  }

  /** Frame width in px for tiles drawn `px` wide: what the page and its tests agree on. */
  static frameWidth(px: number): number {
    return Math.max(2, Math.min(6, Math.round(px * 0.08)))
  }

  private within(x0: number, y0: number, span: number): Placed[] {
    if (span > LEAF_TILES * 8) return this.all.filter((p) => p.x >= x0 && p.x < x0 + span && p.y >= y0 && p.y < y0 + span)
    const out: Placed[] = []
    for (let ly = floorDiv(y0, LEAF_TILES); ly <= floorDiv(y0 + span - 1, LEAF_TILES); ly++) {
      for (let lx = floorDiv(x0, LEAF_TILES); lx <= floorDiv(x0 + span - 1, LEAF_TILES); lx++) {
        for (const p of this.byLeaf.get(`${lx},${ly}`) ?? []) if (p.x >= x0 && p.x < x0 + span && p.y >= y0 && p.y < y0 + span) out.push(p)
      }
    }
    return out
  }

  protected override createTile(coords: L.Coords): HTMLElement {
    const canvas = document.createElement('canvas')
    canvas.width = 256
    canvas.height = 256
    const span = 2 ** -coords.z
    const px = 256 / span
    const x0 = this.mapOrigin[0] + coords.x * span
    const y0 = this.mapOrigin[1] + coords.y * span
    const found = this.within(Math.floor(x0), Math.floor(y0), Math.ceil(span))
    if (found.length === 0) return canvas
    const ctx = canvas.getContext('2d')!
    const lw = ChangesLayer.frameWidth(px)
    for (const p of found) {
      const style = styleOf(p.kind)
      const sx = (p.x - x0) * px
      const sy = (p.y - y0) * px
      if (px < 3 * lw) {
        ctx.fillStyle = style.colour
        const s = Math.max(1, px)
        ctx.fillRect(Math.floor(sx), Math.floor(sy), Math.ceil(s), Math.ceil(s))
        continue
      }
      if (p.kind === 'deleted') {
        ctx.fillStyle = 'rgba(215, 38, 61, 0.35)'
        ctx.fillRect(sx + lw, sy + lw, px - 2 * lw, px - 2 * lw)
      }
      ctx.strokeStyle = style.colour
      ctx.lineWidth = lw
      ctx.setLineDash(style.dashed ? [lw * 2, lw] : [])
      ctx.strokeRect(sx + lw / 2, sy + lw / 2, px - lw, px - lw)
    }
    return canvas
  }
}
