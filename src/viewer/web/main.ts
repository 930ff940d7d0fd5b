import {api} from './api.js'
import {kindOf, kindOfVerdict, styleOf} from './change-kinds.js'
import {ChangesLayer} from './changes-layer.js'
import {byId, el, short} from './dom.js'
import {renderHistory} from './history-view.js'
import {MapPane} from './map-pane.js'
import type {BuildStatus, CommitView, DiffResponse, PyramidIndex, RefsView} from './protocol.js'
import {TilePanel} from './tile-panel.js'

/**
 * The page of `tilesync serve`: a map of any revision or of the working database, a
 * comparison of two (side by side, or one over the other with a swipe line), and the commit
 * history. What is shown lives in the address (view, revisions, layer, position), so any
 * view can be reloaded or shared.
 */

type View = 'map' | 'compare' | 'history'
type Mode = 'side' | 'swipe'

interface State {
  view: View
  rev: string
  from: string | null
  to: string
  layer: string | null
  mode: Mode
  at: {x: number; y: number; z: number} | null
  refs: RefsView | null
  commits: CommitView[]
  index: PyramidIndex | null
  other: PyramidIndex | null
  diff: DiffResponse | null
}

const state: State = {view: 'map', rev: 'HEAD', from: null, to: 'working', layer: null, mode: 'side', at: null, refs: null, commits: [], index: null, other: null, diff: null}

const body = document.body
const statusEl = byId('status')
const buildEl = byId('build')
const panelEl = byId('panel')
const swipeEl = byId('swipe')
const mapB = byId('map-b')
let seq = 0
/** False while a view is being set up: its moves are not the user's and do not go to the address. */
let placed = false

const panel = new TilePanel(panelEl, () => showSummary())
const paneA = new MapPane(byId('map-a'), (x, y) => openTile(x, y))
const paneB = new MapPane(mapB, (x, y) => openTile(x, y))
linkPanes(paneA.map, paneB.map)
paneA.map.on('moveend', () => {
  if (placed) {
    state.at = paneA.centreTile()
    writeLocation()
  }
})

function setStatus(text: string, error = false): void {
  statusEl.textContent = text
  statusEl.className = error ? 'error' : ''
}

// ---- the address ----

function readLocation(): void {
  const p = new URLSearchParams(location.search)
  const view = p.get('view')
  state.view = view === 'compare' || view === 'history' ? view : view === 'diff' ? 'compare' : 'map'
  state.rev = p.get('rev') ?? 'HEAD'
  state.layer = p.get('layer')
  state.from = p.get('from')
  state.to = p.get('to') ?? 'working'
  state.mode = p.get('mode') === 'swipe' ? 'swipe' : 'side'
  const [x, y, z] = ['x', 'y', 'z'].map((k) => p.get(k))
  state.at = x !== null && y !== null && z !== null && [x, y, z].every((v) => /^-?\d+$/.test(v)) ? {x: Number(x), y: Number(y), z: Number(z)} : null
}

function writeLocation(): void {
  const p = new URLSearchParams()
  p.set('view', state.view)
  if (state.view === 'compare') {
    if (state.from) p.set('from', state.from)
    p.set('to', state.to)
    p.set('mode', state.mode)
  } else if (state.view === 'map') p.set('rev', state.rev)
  if (state.layer) p.set('layer', state.layer)
  if (state.at && state.view !== 'history') {
    p.set('x', String(state.at.x))
    p.set('y', String(state.at.y))
    p.set('z', String(state.at.z))
  }
  history.replaceState(null, '', `?${p.toString()}`)
}

// ---- controls ----

function fillSelect(select: HTMLSelectElement, value: string | null, includeWorking: boolean): void {
  select.textContent = ''
  const seen = new Set<string>()
  const add = (v: string, label: string): void => {
    if (seen.has(v)) return
    seen.add(v)
    select.appendChild(el('option', {value: v, text: label}))
  }
  if (includeWorking) add('working', 'working database')
  add('HEAD', `HEAD${state.refs?.branch ? ` (${state.refs.branch})` : ''}`)
  for (const b of state.refs?.branches ?? []) add(b.name, `branch ${b.name}`)
  for (const t of state.refs?.tags ?? []) add(t.name, `tag ${t.name}`)
  for (const c of state.commits) add(c.id, `${short(c.id)} ${c.message.split('\n')[0].slice(0, 40)}`)
  if (value && !seen.has(value)) add(value, value)
  if (value) select.value = value
}

function fillSelects(): void {
  fillSelect(byId<HTMLSelectElement>('rev'), state.rev, true)
  fillSelect(byId<HTMLSelectElement>('from'), state.from, false)
  fillSelect(byId<HTMLSelectElement>('to'), state.to, true)
  byId<HTMLSelectElement>('mode').value = state.mode
}

function fillLayers(layers: string[]): void {
  const select = byId<HTMLSelectElement>('layer')
  select.textContent = ''
  if (!state.layer || !layers.includes(state.layer)) state.layer = layers.length ? layers[layers.length - 1] : null
  for (const l of layers) select.appendChild(el('option', {value: l, text: l}))
  if (state.layer) select.value = state.layer
}

// ---- views ----

async function showView(view: View): Promise<void> {
  state.view = view
  for (const v of ['map', 'compare', 'history'] as const) byId(`tab-${v}`).classList.toggle('active', v === view)
  byId('controls-map').hidden = view !== 'map'
  byId('controls-compare').hidden = view !== 'compare'
  byId('controls-layer').hidden = view === 'history'
  byId('maps').hidden = view === 'history'
  byId('historyview').hidden = view !== 'history'
  byId('legend').hidden = view !== 'compare'
  body.dataset.view = view
  writeLocation()
  if (view === 'history') return showHistory()
  if (view === 'compare' && !state.from) state.from = state.refs?.head ? 'HEAD' : null
  return view === 'compare' ? showCompare() : showMap()
}

function showHistory(): void {
  renderHistory(document.querySelector('#commits tbody') as HTMLElement, state.commits, {
    map: (id) => {
      state.rev = id
      state.at = null
      fillSelects()
      void showView('map')
    },
    compare: (from, to) => {
      state.from = from
      state.to = to
      state.at = null
      fillSelects()
      void showView('compare')
    },
  })
  panel.clear()
  panelEl.appendChild(el('h2', {text: 'History'}))
  panelEl.appendChild(el('p', {class: 'muted', text: 'Every commit, newest first. Open a commit as a map, or compare it with its parent.'}))
  body.dataset.historyState = 'ready'
}

function beginLoad(): number {
  placed = false
  body.dataset.mapState = 'loading'
  delete body.dataset.compareState
  return ++seq
}

async function showMap(): Promise<void> {
  const mine = beginLoad()
  setStatus(`loading ${short(state.rev)}…`)
  try {
    const index = await api.pyramid(state.rev, state.layer)
    if (mine !== seq) return
    state.index = index
    state.other = null
    state.diff = null
    fillLayers(index.layers)
    writeLocation()
    mapB.hidden = true
    swipeEl.hidden = true
    paneA.map.invalidateSize()
    paneA.setChanges(null)
    if (state.layer) paneA.show(index, state.layer, index.origin)
    place(index.bounds)
    showSummary()
    await settled(mine, [paneA])
    if (mine !== seq) return
    body.dataset.mapRevision = index.revision
    body.dataset.mapState = 'ready'
    setStatus(`${index.count} tiles at ${index.revision === 'working' ? 'the working database' : short(index.revision)}`)
  } catch (error) {
    failed(mine, error)
  }
}

async function showCompare(): Promise<void> {
  const mine = beginLoad()
  if (!state.from) {
    setStatus('no commits to compare', true)
    body.dataset.mapState = 'error'
    return
  }
  setStatus(`comparing ${short(state.from)} with ${short(state.to)}…`)
  body.dataset.perceptualState = 'pending'
  try {
    const [before, after, diff] = await Promise.all([api.pyramid(state.from, state.layer), api.pyramid(state.to, state.layer), api.diff(state.from, state.to)])
    if (mine !== seq) return
    state.index = before
    state.other = after
    state.diff = diff
    fillLayers([...new Set([...before.layers, ...after.layers])])
    writeLocation()
    // Both sides on one grid: the smaller origin (each is a multiple of 256 tiles).
    const origin: [number, number] = before.levels.length === 0 ? after.origin : after.levels.length === 0 ? before.origin : [Math.min(before.origin[0], after.origin[0]), Math.min(before.origin[1], after.origin[1])]
    const swipe = state.mode === 'swipe'
    mapB.hidden = swipe
    swipeEl.hidden = !swipe
    paneA.map.invalidateSize()
    paneB.map.invalidateSize()
    const layer = state.layer ?? ''
    if (swipe) {
      paneA.show(before, layer, origin, after)
      paneA.setChanges(diff.changes.tiles)
      paneB.setChanges(null)
      placeSwipeLine()
    } else {
      paneA.show(before, layer, origin)
      paneB.show(after, layer, origin)
      paneA.setChanges(diff.changes.tiles)
      paneB.setChanges(diff.changes.tiles)
    }
    place(union(union(before.bounds, after.bounds), changedBounds(diff)))
    showLegend(diff)
    showSummary()
    await settled(mine, swipe ? [paneA] : [paneA, paneB])
    if (mine !== seq) return
    body.dataset.mapRevision = after.revision
    body.dataset.mapState = 'ready'
    body.dataset.compareState = 'ready'
    const n = diff.changes.tiles.length
    setStatus(`${n} changed tile${n === 1 ? '' : 's'}, ${short(diff.from)} → ${short(diff.to)}`)
    void markPerceptual(mine, diff, swipe)
  } catch (error) {
    failed(mine, error)
  }
}

function failed(mine: number, error: unknown): void {
  if (mine !== seq) return
  setStatus((error as Error).message, true)
  body.dataset.mapState = 'error'
}

/** Goes to the address's position, or fits the whole map. */
function place(bounds: [number, number, number, number] | null): void {
  if (state.at) paneA.viewTile(state.at.x, state.at.y, state.at.z)
  else if (bounds) paneA.fitTiles(...bounds)
  else paneA.map.setView([0, 0], 0, {animate: false})
  state.at = paneA.centreTile()
  placed = true
  writeLocation()
}

/** Resolves when every visible image of the panes has arrived (or failed). */
function settled(mine: number, panes: MapPane[]): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (mine !== seq || panes.every((p) => !p.loading())) resolve()
      else setTimeout(check, 30)
    }
    setTimeout(check, 0)
  })
}

function union(a: [number, number, number, number] | null, b: [number, number, number, number] | null): [number, number, number, number] | null {
  if (!a) return b
  if (!b) return a
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])]
}

/**
 * Asks the server which modified tiles only re-encoded their images (or barely changed them)
 * and outlines those by that kind. It comes after the comparison is shown: the server may
 * have to decode images it has not seen yet, and the map need not wait for it.
 */
async function markPerceptual(mine: number, diff: DiffResponse, swipe: boolean): Promise<void> {
  try {
    const verdicts = await api.perceptual(diff.from, diff.to)
    if (mine !== seq) return
    const byTile = new Map(verdicts.tiles.map((t) => [`${t.x},${t.y}`, t.verdict]))
    for (const t of diff.changes.tiles) {
      const kind = t.status === 'modified' && t.kind === undefined ? kindOfVerdict(byTile.get(`${t.x},${t.y}`) ?? '') : null
      if (kind) t.kind = kind
    }
    paneA.setChanges(diff.changes.tiles)
    if (!swipe) paneB.setChanges(diff.changes.tiles)
    showLegend(diff)
    // The list of changes, in place: the panel may be showing a tile the user opened meanwhile.
    for (const li of document.querySelectorAll<HTMLElement>('#changes li')) {
      const kind = kindOfVerdict(byTile.get(`${li.dataset.x},${li.dataset.y}`) ?? '')
      if (!kind || li.dataset.status !== 'modified') continue
      li.dataset.kind = kind
      const badge = li.querySelector<HTMLElement>('.status')
      if (badge) {
        badge.textContent = kind
        badge.style.color = styleOf(kind).colour
      }
    }
    body.dataset.perceptualState = 'ready'
  } catch {
    // Without verdicts the tiles stay outlined as modified; the comparison itself stands.
    if (mine === seq) body.dataset.perceptualState = 'unavailable'
  }
}

function changedBounds(diff: DiffResponse): [number, number, number, number] | null {
  let b: [number, number, number, number] | null = null
  for (const t of diff.changes.tiles) if (t.x !== undefined && t.y !== undefined) b = union(b, [t.x, t.y, t.x, t.y])
  return b
}

function showLegend(diff: DiffResponse): void {
  const legend = byId('legend')
  legend.textContent = ''
  // The three statuses always, with their counts; finer kinds only where a tile has one.
  const counts = new Map<string, number>(['added', 'modified', 'deleted'].map((k) => [k, 0]))
  for (const t of diff.changes.tiles) counts.set(kindOf(t), (counts.get(kindOf(t)) ?? 0) + 1)
  for (const [kind, n] of counts) {
    const swatch = el('span', {class: 'swatch'})
    const style = styleOf(kind)
    swatch.style.borderColor = style.colour
    if (style.dashed) swatch.style.borderStyle = 'dashed'
    legend.appendChild(el('span', {'data-kind': kind}, [swatch, `${style.label} ${n}`]))
  }
}

// ---- the swipe line ----

function placeSwipeLine(): void {
  const box = paneA.container.getBoundingClientRect()
  swipeEl.style.left = `${box.width * paneA.clipFraction}px`
}

swipeEl.addEventListener('pointerdown', (e) => {
  e.preventDefault()
  e.stopPropagation()
  swipeEl.setPointerCapture(e.pointerId)
  const move = (ev: PointerEvent): void => {
    const box = paneA.container.getBoundingClientRect()
    paneA.setClip((ev.clientX - box.left) / box.width)
    placeSwipeLine()
  }
  const up = (): void => {
    swipeEl.removeEventListener('pointermove', move)
    swipeEl.removeEventListener('pointerup', up)
  }
  swipeEl.addEventListener('pointermove', move)
  swipeEl.addEventListener('pointerup', up)
})

/** The two maps of the side-by-side view move as one: whichever is moved, the other follows. */
function linkPanes(a: L.Map, b: L.Map): void {
  let following = false
  const follow = (src: L.Map, dst: L.Map) => (): void => {
    if (following || mapB.hidden || state.view !== 'compare') return
    const c = src.getCenter()
    const d = dst.getCenter()
    if (src.getZoom() === dst.getZoom() && Math.abs(c.lat - d.lat) < 1e-9 && Math.abs(c.lng - d.lng) < 1e-9) return
    following = true
    try {
      dst.setView(c, src.getZoom(), {animate: false})
    } finally {
      following = false
    }
  }
  const zoomTo = (dst: L.Map) => (e: L.ZoomAnimEvent): void => {
    if (following || mapB.hidden || state.view !== 'compare') return
    following = true
    try {
      dst.setView(e.center, e.zoom, {animate: false})
    } finally {
      following = false
    }
  }
  a.on('move moveend', follow(a, b))
  b.on('move moveend', follow(b, a))
  a.on('zoomanim', zoomTo(b))
  b.on('zoomanim', zoomTo(a))
}

// ---- the side panel ----

function showSummary(): void {
  panel.clear()
  const d = state.diff
  if (state.view === 'compare' && d) {
    const sum = d.changes.summary
    panelEl.appendChild(el('h2', {text: `${short(d.from)} → ${short(d.to)}`}))
    panelEl.appendChild(el('p', {text: `${sum.tilesAdded} added, ${sum.tilesModified} modified, ${sum.tilesDeleted} deleted. Before on the left, after on the right; click a tile for both at full size and its history.`}))
    const list = el('ul', {id: 'changes'})
    const shown = d.changes.tiles.filter((t) => t.x !== undefined).slice(0, 2000)
    for (const t of shown) {
      const kind = kindOf(t)
      const badge = el('span', {class: 'status', text: kind})
      badge.style.color = styleOf(kind).colour
      list.appendChild(el('li', {'data-x': t.x, 'data-y': t.y, 'data-status': t.status, 'data-kind': kind, onclick: () => {
        paneA.viewTile(t.x!, t.y!, Math.max(paneA.map.getZoom(), -1))
        openTile(t.x!, t.y!)
      }}, [badge, `tile ${t.x},${t.y} `, el('span', {class: 'muted', text: t.layers.map((l) => (l.change && l.change !== 'modified' ? `${l.layer} ${l.change}` : l.layer)).join(', ')})]))
    }
    panelEl.appendChild(list)
    const more = d.changes.tiles.length - shown.length
    if (more > 0) panelEl.appendChild(el('p', {class: 'muted', text: `and ${more} more`}))
    return
  }
  const i = state.index
  if (!i) return
  panelEl.appendChild(el('h2', {text: i.revision === 'working' ? 'Working database' : `Revision ${short(i.revision)}`}))
  panelEl.appendChild(el('p', {text: `${i.count} tiles; layers: ${i.layers.join(', ') || 'none'}.`}))
  panelEl.appendChild(el('p', {class: 'muted', text: 'Drag to pan, scroll or + / − to zoom (arrow keys and + / − once the map has focus; pinch on a touch screen). Click a tile for its history and its images at full size.'}))
}

function openTile(x: number, y: number): void {
  const rev = state.view === 'compare' ? state.to : state.rev
  void panel.open(x, y, rev, state.view === 'compare' ? state.diff : null)
}

// ---- the background build ----

let polling = false
async function pollBuild(): Promise<void> {
  if (polling) return
  polling = true
  try {
    for (;;) {
      let s: BuildStatus
      try {
        s = await api.status()
      } catch {
        break
      }
      const running = s.jobs.filter((j) => j.state === 'building' || j.state === 'queued')
      const planned = running.reduce((n, j) => n + j.planned, 0)
      const done = running.reduce((n, j) => n + j.done, 0)
      buildEl.textContent = s.building ? `making map images ${done}/${planned}` : ''
      body.dataset.building = String(s.building)
      if (!s.building) break
      await new Promise((r) => setTimeout(r, 1500))
    }
  } finally {
    polling = false
  }
}

// ---- wiring ----

for (const v of ['map', 'compare', 'history'] as const) byId(`tab-${v}`).addEventListener('click', () => void showView(v))
byId<HTMLSelectElement>('rev').addEventListener('change', (e) => {
  state.rev = (e.target as HTMLSelectElement).value
  void showMap().then(pollBuild)
})
byId<HTMLSelectElement>('from').addEventListener('change', (e) => {
  state.from = (e.target as HTMLSelectElement).value
  void showCompare().then(pollBuild)
})
byId<HTMLSelectElement>('to').addEventListener('change', (e) => {
  state.to = (e.target as HTMLSelectElement).value
  void showCompare().then(pollBuild)
})
byId<HTMLSelectElement>('mode').addEventListener('change', (e) => {
  state.mode = (e.target as HTMLSelectElement).value === 'swipe' ? 'swipe' : 'side'
  void showCompare()
})
byId<HTMLSelectElement>('layer').addEventListener('change', (e) => {
  state.layer = (e.target as HTMLSelectElement).value
  void showView(state.view)
})
window.addEventListener('resize', () => placeSwipeLine())

/** For tests and for anyone scripting the page. */
const hooks = {
  state,
  panes: [paneA, paneB],
  /** Where tile (x, y) is drawn in pane `n` (0: the map, or the left side): top left in page pixels, and its edge. */
  screenOf: (x: number, y: number, n = 0) => [paneA, paneB][n].screenOf(x, y),
  /** Centres tile (x, y) at `zoom` (the other side follows). */
  viewTile: (x: number, y: number, zoom: number) => paneA.viewTile(x, y, zoom),
  /** Shows tiles x0..x1, y0..y1 as large as whole zoom steps allow. */
  fitTiles: (x0: number, y0: number, x1: number, y1: number) => paneA.fitTiles(x0, y0, x1, y1),
  /** True when every image the visible maps need has arrived. */
  idle: () => body.dataset.mapState === 'ready' && [paneA, paneB].every((p) => !p.loading()),
  openTile,
  frameWidth: (px: number) => ChangesLayer.frameWidth(px),
}
;(window as unknown as {tilesync: typeof hooks}).tilesync = hooks

async function boot(): Promise<void> {
  readLocation()
  try {
    const [r, log] = await Promise.all([api.refs(), api.log(500)])
    state.refs = r
    state.commits = log.commits
  } catch (error) {
    setStatus((error as Error).message, true)
    return
  }
  const refs = state.refs
  if (!state.from && state.commits.length) state.from = 'HEAD'
  // Before the first commit there is only the working database to show.
  if (!refs.head && state.rev === 'HEAD' && !new URLSearchParams(location.search).has('rev')) state.rev = 'working'
  fillSelects()
  await showView(state.view)
  void pollBuild()
}

void boot()
