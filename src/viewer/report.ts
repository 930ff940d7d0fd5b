import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import type {RowChangeView} from '../snapshot/change-set.js'
import type {DiffResult} from '../ops/diff.js'
import type {ImageVerdict} from '../ops/perceptual-diff.js'
import {EMPTY_STATE} from '../snapshot/tree-state.js'
import {type Workspace} from '../workspace/workspace.js'
import type {BlobRef, Row, TableTree} from '../snapshot/model.js'
import {tileXY} from '../snapshot/rows.js'
import type {BBox} from '../snapshot/tree-reader.js'
import {writeFileAtomic} from '../util/write-file-atomic.js'
import {dimensions, isPng} from './images.js'
import {RepoView, type Side, WORKING} from './repo-view.js'
// The viewer's colours for what happened to a tile, so the report and the map agree.
import {KIND_STYLES} from './web/change-kinds.js'

export interface ReportResult {
  file: string
  bytes: number
  tiles: number
  changed: number
}

/** Edge of the overview thumbnails, px. */
export const OVERVIEW_THUMB = 32
const CELL = 28

type Status = 'added' | 'modified' | 'deleted' | 'unchanged'

interface Cell {
  x: number
  y: number
  status: Status
  object: string | null
}

/** Larger diffs get smaller before/after images, so the file stays openable. */
export function detailEdge(changed: number): number {
  return changed <= 200 ? 256 : changed <= 2000 ? 128 : 64
}

/**
 * Writes one self-contained HTML file for a diff: an overview of every tile coloured by what
 * happened to it (with thumbnails), then each changed tile's before and after images per
 * layer with coordinates and object ids. Every image is embedded as a data: URL, so the file
 * opens offline. Images no larger than the detail edge are embedded as the stored PNG itself.
 */
export async function writeDiffReport(ws: Workspace, result: DiffResult, file: string, options: {bbox?: BBox} = {}): Promise<ReportResult> {
  const view = new RepoView(ws)
  try {
    const report = await buildDiffReport(view, result, options)
    const out = path.resolve(file)
    await fs.mkdir(path.dirname(out), {recursive: true})
    const bytes = Buffer.from(report.html)
    await writeFileAtomic(path.dirname(out), out, bytes, false)
    return {file: out, bytes: bytes.length, tiles: report.tiles, changed: report.changed}
  } finally {
    view.close()
  }
}

export async function buildDiffReport(view: RepoView, result: DiffResult, options: {bbox?: BBox} = {}): Promise<{html: string; tiles: number; changed: number}> {
  const from: Side = result.from ? await view.side(result.from) : {revision: '', state: EMPTY_STATE, reader: view.ws.reader}
  const to = await view.side(result.to === WORKING ? WORKING : result.to)
  const fromTable = tileTable(from)
  const toTable = tileTable(to)
  // Layers of either side: a layer the app added, or one it dropped, is shown too.
  const layers = result.changes.layers?.length ? result.changes.layers : (toTable ?? fromTable)?.layers.map((i) => (toTable ?? fromTable)!.columns[i].name) ?? []
  const changes = new Map<string, RowChangeView>()
  for (const t of result.changes.tiles) if (t.x !== undefined && t.y !== undefined) changes.set(`${t.x},${t.y}`, t)
  // With `diff --perceptual`: what happened to each modified tile's images (marks only).
  const perceptual = new Map((result.perceptual?.tiles ?? []).map((t) => [`${t.x},${t.y}`, t]))

  // Overview: every tile of the new side, and the deleted ones of the old side.
  const cells: Cell[] = []
  const preferred = (ids: Record<string, string | null>): string | null => {
    for (const l of [...layers].reverse()) if (ids[l]) return ids[l]
    return null
  }
  if (toTable) {
    for await (const row of to.reader.rows(toTable, options.bbox)) {
      const xy = tileXY(row, toTable.partition)
      if (!xy || (options.bbox && !inBox(xy, options.bbox))) continue
      const change = changes.get(`${xy[0]},${xy[1]}`)
      cells.push({x: xy[0], y: xy[1], status: change ? change.status : 'unchanged', object: preferred(layerIds(row, toTable))})
    }
  }
  for (const c of changes.values()) {
    if (c.status !== 'deleted') continue
    const ids: Record<string, string | null> = {}
    for (const l of c.layers) ids[l.layer] = l.old?.id ?? null
    cells.push({x: c.x!, y: c.y!, status: 'deleted', object: preferred(ids)})
  }

  const thumbClass = new Map<string, string>()
  const css: string[] = []
  await Promise.all([...new Set(cells.map((c) => c.object).filter((o): o is string => o !== null))].map(async (id, i) => {
    const bytes = await view.thumbnail(id, OVERVIEW_THUMB)
    thumbClass.set(id, `i${i}`)
    css[i] = `.i${i}{background-image:url(data:image/webp;base64,${bytes.toString('base64')})}`
  }))

  const edge = detailEdge(changes.size)
  const details: string[] = []
  for (const change of changes.values()) {
    const before = fromTable ? await rowAt(from, fromTable, change.x!, change.y!) : null
    const after = toTable ? await rowAt(to, toTable, change.x!, change.y!) : null
    const beforeIds = before && fromTable ? layerRefs(before, fromTable) : {}
    const afterIds = after && toTable ? layerRefs(after, toTable) : {}
    const rows: string[] = []
    for (const layer of layers) {
      const changed = change.layers.find((l) => l.layer === layer)
      const b = changed ? changed.old : beforeIds[layer] ?? null
      const a = changed ? changed.new : afterIds[layer] ?? null
      const verdict = perceptual.get(`${change.x},${change.y}`)?.layers.find((l) => l.layer === layer)
      if (changed) {
        const what = change.status === 'modified' && changed.change !== 'modified' ? ` <span class="badge ${changed.change === 'added' ? 'added' : 'deleted'}">${changed.change}</span>` : ''
        rows.push(`<tr data-layer="${esc(layer)}" data-changed="true"${verdict ? ` data-perceptual="${verdict.verdict}"` : ''}><th data-change="${changed.change}">${esc(layer)}${what}${verdict ? `<br><span class="verdict">${verdictLabel(verdict.verdict, verdict.distance)}</span>` : ''}</th><td>${await figure(view, b, 'before', edge)}</td><td>${await figure(view, a, 'after', edge)}</td></tr>`)
      } else {
        rows.push(`<tr data-layer="${esc(layer)}" data-changed="false"><th>${esc(layer)}</th><td colspan="2">${await figure(view, a ?? b, 'unchanged', edge)}</td></tr>`)
      }
    }
    const columns = change.columns.length ? `<p class="cols">Other columns changed: ${change.columns.map(esc).join(', ')}</p>` : ''
    const p = perceptual.get(`${change.x},${change.y}`)
    details.push(`<article class="tile ${change.status}" id="tile_${change.x}_${change.y}" data-x="${change.x}" data-y="${change.y}" data-status="${change.status}"${p ? ` data-perceptual="${p.verdict}"` : ''}>
<h3>Tile ${change.x},${change.y} <span class="badge ${change.status}">${change.status}</span>${p ? ` <span class="badge ${p.verdict}">${verdictLabel(p.verdict, null)}</span>` : ''} <a href="#overview">overview</a></h3>
<table><tr><th>layer</th><th>before <code>${esc(short(result.from))}</code></th><th>after <code>${esc(short(result.to))}</code></th></tr>
${rows.join('\n')}</table>${columns}</article>`)
  }

  const counts = {added: 0, modified: 0, deleted: 0, unchanged: 0}
  for (const c of cells) counts[c.status]++
  let grid = ''
  if (cells.length) {
    // Folds, not Math.min(...cells): a whole city's tiles are more arguments than a call takes.
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity]
    for (const c of cells) {
      x0 = Math.min(x0, c.x)
      y0 = Math.min(y0, c.y)
      x1 = Math.max(x1, c.x)
      y1 = Math.max(y1, c.y)
    }
    const w = x1 - x0 + 1
    const h = y1 - y0 + 1
    const step = CELL + 2
    const items = cells.map((c) => {
      const verdict = perceptual.get(`${c.x},${c.y}`)?.verdict
      const cls = `cell ${c.status}${verdict ? ` ${verdict}` : ''}${c.object ? ` ${thumbClass.get(c.object)}` : ' empty'}`
      const tag = c.status === 'unchanged' ? 'span' : 'a'
      const href = c.status === 'unchanged' ? '' : ` href="#tile_${c.x}_${c.y}"`
      return `<${tag} class="${cls}"${href} data-x="${c.x}" data-y="${c.y}" data-status="${c.status}"${verdict ? ` data-perceptual="${verdict}"` : ''}${c.object ? ` data-object="${c.object}"` : ''} style="left:${(c.x - x0) * step}px;top:${(c.y - y0) * step}px" title="${c.x},${c.y} ${c.status}"></${tag}>`
    })
    grid = `<div class="grid-wrap"><div class="grid" style="width:${w * step}px;height:${h * step}px">\n${items.join('\n')}\n</div></div>
<p class="muted">x ${x0}..${x0 + w - 1} left to right, y ${y0}..${y0 + h - 1} top to bottom. Click a coloured tile for its images.</p>`
  } else {
    grid = '<p class="muted">No tiles.</p>'
  }
  const others = result.changes.tables.filter((t) => !t.isTileTable)
  const schemaText = result.changes.schema?.length ? `<p class="schema">Schema: ${result.changes.schema.map((c) => esc(`${c.kind} ${c.name}${c.kind === 'column' && c.table !== result.changes.tileTable ? ` of table ${c.table}` : ''} ${c.change}${c.kind === 'column' && result.changes.layers.includes(c.name) ? ' (image layer)' : ''}`)).join('; ')}</p>` : ''
  const otherText = others.length ? `<p>Other tables changed: ${others.map((t) => `${esc(t.table)} (${t.added} added, ${t.modified} modified, ${t.deleted} deleted)`).join('; ')}</p>` : ''
  const title = `tilesync diff ${short(result.from)} → ${result.to === WORKING ? 'working database' : short(result.to)}`

  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tilesync">
<title>${esc(title)}</title>
<style>
${REPORT_CSS}
${css.join('\n')}
</style>
</head>
<body>
<header>
<h1>${esc(title)}</h1>
<p class="ids">from <code data-side="from">${esc(result.from || '(no commits)')}</code><br>to <code data-side="to">${esc(result.to === WORKING ? 'the working database' : result.to)}</code></p>
<p class="summary" data-added="${counts.added}" data-modified="${counts.modified}" data-deleted="${counts.deleted}" data-unchanged="${counts.unchanged}">
<span class="badge added">${counts.added} added</span> <span class="badge modified">${counts.modified} modified</span> <span class="badge deleted">${counts.deleted} deleted</span> <span class="badge unchanged">${counts.unchanged} unchanged</span>${options.bbox ? ` in box ${options.bbox.join(',')}` : ''}</p>
${otherText}${perceptualSummary(result)}
${schemaText}
<p class="muted">Generated ${esc(new Date().toISOString())}. Overview thumbnails ${OVERVIEW_THUMB} px; before/after images up to ${edge} px (the stored PNG itself when it is no larger). Full size: <code>tilesync show REV --tile X,Y --layer L -o tile.png</code>.</p>
</header>
<section id="overview">
<h2>Overview</h2>
<div class="legend"><span class="badge added">added</span> <span class="badge modified">modified</span> <span class="badge deleted">deleted</span> <span class="badge unchanged">unchanged</span></div>
${grid}
</section>
<section id="changes">
<h2>Changed tiles (${changes.size})</h2>
${details.join('\n') || '<p class="muted">No tile changed.</p>'}
</section>
</body>
</html>
`
  return {html, tiles: cells.length, changed: changes.size}
}

async function figure(view: RepoView, ref: BlobRef | null, label: string, edge: number): Promise<string> {
  if (!ref) return `<figure class="${label} none"><div class="null">NULL</div><figcaption>${label}: no image</figcaption></figure>`
  const bytes = await view.blob(ref.id)
  let src: string
  let note = ''
  const dims = isPng(bytes) ? await dimensions(bytes) : {width: 0, height: 0}
  if (isPng(bytes) && dims.width <= edge && dims.height <= edge) {
    src = `data:image/png;base64,${bytes.toString('base64')}`
  } else {
    src = `data:image/webp;base64,${(await view.thumbnail(ref.id, edge)).toString('base64')}`
    note = ` (shown at ${edge} px)`
  }
  return `<figure class="${label}" data-object="${ref.id}"><img src="${src}" alt="${label} ${ref.id}"><figcaption>${label}: <code>${ref.id}</code><br>${dims.width}×${dims.height}, ${ref.size} bytes${note}</figcaption></figure>`
}

function tileTable(side: Side): TableTree | undefined {
  const name = side.state.snapshot.tileTable
  const t = name ? side.state.tables.get(name) : undefined
  return t && t.partition.kind === 'spatial' ? t : undefined
}

async function rowAt(side: Side, table: TableTree, x: number, y: number): Promise<Row | null> {
  for await (const row of side.reader.rows(table, [x, y, x, y])) {
    const xy = tileXY(row, table.partition)
    if (xy && xy[0] === x && xy[1] === y) return row
  }
  return null
}

function layerIds(row: Row, table: TableTree): Record<string, string | null> {
  const out: Record<string, string | null> = {}
  for (const li of table.layers) out[table.columns[li].name] = row.types[li] === 'b' ? (row.values[li] as BlobRef).id : null
  return out
}

function layerRefs(row: Row, table: TableTree): Record<string, BlobRef | null> {
  const out: Record<string, BlobRef | null> = {}
  for (const li of table.layers) out[table.columns[li].name] = row.types[li] === 'b' ? (row.values[li] as BlobRef) : null
  return out
}

function inBox(xy: [number, number], b: BBox): boolean {
  return xy[0] >= b[0] && xy[0] <= b[2] && xy[1] >= b[1] && xy[1] <= b[3]
}

function verdictLabel(verdict: ImageVerdict, distance: number | null): string {
  const text = verdict === 'pixels-identical' ? 're-encoded (pixels identical)' : verdict === 'nearly-identical' ? 'nearly identical' : 'image changed'
  return distance === null || verdict === 'pixels-identical' ? text : `${text}, distance ${distance}`
}

function perceptualSummary(result: DiffResult): string {
  const p = result.perceptual
  if (!p) return ''
  return `\n<p class="perceptual" data-pixels-identical="${p.counts.pixelsIdentical}" data-nearly-identical="${p.counts.nearlyIdentical}" data-changed="${p.counts.changed}">Modified tiles by their images: <span class="badge pixels-identical">${p.counts.pixelsIdentical} re-encoded (pixels identical)</span> <span class="badge nearly-identical">${p.counts.nearlyIdentical} nearly identical (distance &lt;= ${p.threshold} of 128)</span> <span class="badge changed">${p.counts.changed} image changed</span></p>`
}

function short(id: string): string {
  return id === WORKING ? 'working' : id ? id.slice(0, 10) : '(none)'
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]!)
}

const REPORT_CSS = `
:root{--added:${KIND_STYLES.added.colour};--modified:${KIND_STYLES.modified.colour};--deleted:${KIND_STYLES.deleted.colour};--unchanged:#98a2b3;--line:#d0d5dd;--muted:#667085}
*{box-sizing:border-box}
body{margin:0;padding:18px 24px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f5f6f8}
h1{font-size:20px;margin:0 0 6px}h2{font-size:17px;margin:22px 0 10px}h3{font-size:15px;margin:0 0 8px}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.muted{color:var(--muted)}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff}
.badge.added{background:var(--added)}.badge.modified{background:var(--modified)}.badge.deleted{background:var(--deleted)}.badge.unchanged{background:var(--unchanged)}
.grid-wrap{overflow:auto;max-height:80vh;background:#fff;border:1px solid var(--line);padding:8px}
.grid{position:relative}
.cell{position:absolute;width:${CELL}px;height:${CELL}px;background-size:cover;background-color:#eee;image-rendering:pixelated;display:block}
.cell.unchanged{opacity:.45}
.cell.added,.cell.modified,.cell.deleted{outline:3px solid;outline-offset:-1px;z-index:1}
.cell.added{outline-color:var(--added)}.cell.modified{outline-color:var(--modified)}
.cell.deleted{outline-color:var(--deleted);filter:grayscale(.6)}
.cell.deleted::after{content:"";position:absolute;inset:0;background:rgba(215,38,61,.35)}
.cell.empty{background-image:repeating-linear-gradient(45deg,#ccc 0 3px,#eee 3px 6px)}
article.tile{background:#fff;border:1px solid var(--line);border-left:6px solid;border-radius:6px;padding:12px 14px;margin:0 0 12px}
article.added{border-left-color:var(--added)}article.modified{border-left-color:var(--modified)}article.deleted{border-left-color:var(--deleted)}
article h3 a{font-size:12px;font-weight:400;margin-left:8px}
article table{border-collapse:collapse}
article th,article td{text-align:left;vertical-align:top;padding:4px 10px 4px 0}
figure{margin:0}
figure img{display:block;width:256px;max-width:40vw;height:auto;image-rendering:pixelated;border:1px solid var(--line);background:#eee}
figure.none .null{width:256px;max-width:40vw;aspect-ratio:1;border:1px dashed var(--line);display:flex;align-items:center;justify-content:center;color:var(--muted)}
figcaption{font-size:12px;color:var(--muted);max-width:256px}
.badge.pixels-identical{background:#5b7083}.badge.nearly-identical{background:#b08800}.badge.changed{background:#9a3412}
.cell.modified.pixels-identical{outline-style:dashed;outline-color:#5b7083}.cell.modified.nearly-identical{outline-style:dotted}
.verdict{font-weight:400;font-size:12px;color:var(--muted)}
`
