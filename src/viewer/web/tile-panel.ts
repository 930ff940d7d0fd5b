import {api, objectUrl, thumbUrl} from './api.js'
import {kindOf, styleOf} from './change-kinds.js'
import {el, formatBytes, short} from './dom.js'
import type {DiffResponse, ImageRef, TileHistoryView} from './protocol.js'

/**
 * The side panel for one tile: each layer's image at full size as the revision holds it,
 * before and after when comparing, and the tile's history (every commit where it changed)
 * with a thumbnail, a full-size link and a PNG download per version and layer.
 */
export class TilePanel {
  private seq = 0

  constructor(private readonly panel: HTMLElement, private readonly onBack: () => void) {}

  clear(): void {
    this.seq++
    this.panel.textContent = ''
    delete this.panel.dataset.tile
    delete this.panel.dataset.state
  }

  /** Opens tile (x, y) as of `rev`; `diff` adds its before and after when it changed there. */
  async open(x: number, y: number, rev: string, diff: DiffResponse | null): Promise<void> {
    const seq = ++this.seq
    const p = this.panel
    p.textContent = ''
    p.dataset.tile = `${x},${y}`
    p.dataset.state = 'loading'
    p.appendChild(el('button', {text: '← back', onclick: () => this.onBack()}))
    p.appendChild(el('h2', {text: `Tile ${x},${y}`}))
    const change = diff?.changes.tiles.find((t) => t.x === x && t.y === y)
    if (diff && change) {
      const kind = kindOf(change)
      const badge = el('span', {class: 'status', 'data-kind': kind, text: kind})
      // Set through the DOM: the page's content policy allows no inline style attributes.
      badge.style.color = styleOf(kind).colour
      p.appendChild(el('p', {}, [badge, ' ', el('span', {class: 'mono', text: `${short(diff.from)} → ${short(diff.to)}`})]))
      const box = el('div', {id: 'before-after'})
      for (const l of change.layers) {
        box.appendChild(el('h3', {text: l.layer}))
        box.appendChild(el('div', {class: 'pair', 'data-layer': l.layer}, [
          fullSize(l.old, 'before', fileName(x, y, l.layer, diff.from)),
          fullSize(l.new, 'after', fileName(x, y, l.layer, diff.to)),
        ]))
      }
      if (change.columns.length) box.appendChild(el('p', {class: 'muted', text: `other columns changed: ${change.columns.join(', ')}`}))
      p.appendChild(box)
    }
    const current = el('div', {id: 'tile-now'})
    p.appendChild(current)
    p.appendChild(el('h3', {text: 'History of this tile'}))
    const list = el('ol', {id: 'tile-history'})
    p.appendChild(list)
    let h: TileHistoryView
    try {
      h = await api.tileHistory(rev, x, y)
    } catch (error) {
      if (seq !== this.seq) return
      list.appendChild(el('li', {class: 'muted', text: (error as Error).message}))
      p.dataset.state = 'error'
      return
    }
    if (seq !== this.seq) return
    const latest = h.versions[0]
    if (latest && latest.status !== 'deleted') {
      current.appendChild(el('h3', {text: `Layers at ${rev === 'working' ? 'the working database' : short(rev)}, full size`}))
      for (const layer of h.layers) {
        current.appendChild(el('div', {class: 'layer-full', 'data-layer': layer}, [el('div', {class: 'mono', text: layer}), fullSize(latest.layers[layer] ?? null, layer, fileName(x, y, layer, latest.commit))]))
      }
    } else {
      current.appendChild(el('p', {class: 'muted', text: latest ? 'This tile was deleted in this revision.' : 'No tile here in this revision.'}))
    }
    if (!h.versions.length) list.appendChild(el('li', {class: 'muted', text: 'no version of this tile in this history'}))
    for (const v of h.versions) {
      const thumbs = el('div', {class: 'thumbs'}, h.layers.map((l) => thumb(v.layers[l] ?? null, l, fileName(x, y, l, v.commit))))
      list.appendChild(el('li', {'data-commit': v.commit, 'data-status': v.status}, [
        el('span', {class: `status ${v.status}`, text: v.status}),
        el('span', {class: 'mono', text: short(v.commit)}), ' ', v.message.split('\n')[0],
        el('div', {class: 'muted', text: [v.author, v.date].filter(Boolean).join(' · ')}),
        v.summary?.length ? el('div', {class: 'layer-changes', text: v.summary.join('; ')}) : null,
        v.status === 'deleted' ? null : thumbs,
      ]))
    }
    p.dataset.state = 'ready'
  }
}

function fileName(x: number, y: number, layer: string, rev: string): string {
  return `tile_${x}_${y}_${layer}_${short(rev)}.png`
}

/** An image at its own size (a scroll box when wider than the panel), or the NULL box. */
function fullSize(ref: ImageRef | null, caption: string, name: string): HTMLElement {
  if (!ref) return el('figure', {class: 'full'}, [el('div', {class: 'none', text: 'NULL'}), el('figcaption', {text: `${caption}: no image`})])
  const img = el('img', {src: objectUrl(ref.id), alt: `${caption} ${ref.id}`, class: 'native'})
  // Never smaller than the image itself; a small one is enlarged by a whole factor to be seen.
  img.addEventListener('load', () => {
    if (img.naturalWidth > 0 && img.naturalWidth < 128) img.style.width = `${img.naturalWidth * Math.floor(128 / img.naturalWidth)}px`
  })
  return el('figure', {class: 'full', 'data-object': ref.id}, [
    el('div', {class: 'scroll'}, [img]),
    el('figcaption', {}, [`${caption} `, el('span', {class: 'mono', text: short(ref.id)}), ` ${formatBytes(ref.size)} `,
      el('a', {class: 'download', href: objectUrl(ref.id, name), download: name, text: 'PNG'})]),
  ])
}

function thumb(ref: ImageRef | null, caption: string, name: string): HTMLElement {
  if (!ref) return el('figure', {}, [el('div', {class: 'none', text: 'NULL'}), el('figcaption', {text: caption})])
  return el('figure', {'data-object': ref.id}, [
    el('a', {href: objectUrl(ref.id), target: '_blank', rel: 'noopener', title: 'full size'}, [el('img', {src: thumbUrl(ref.id, 128), alt: `${caption} ${ref.id}`, loading: 'lazy'})]),
    el('figcaption', {}, [`${caption} `, el('a', {class: 'download', href: objectUrl(ref.id, name), download: name, text: 'PNG'})]),
  ])
}
