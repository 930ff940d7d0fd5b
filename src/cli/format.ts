import type {ShapeReport} from '../db/shapes.js'
import type {SchemaChange} from '../snapshot/versioned-schema.js'
import {type ChangeSet, layerPhrase, type RowChangeView} from '../snapshot/change-set.js'
import type {PerceptualDiff} from '../ops/perceptual-diff.js'

/**
 * A commit id as messages show it (its first 10 hex digits). A missing one (a branch that did
 * not exist yet) is the bare word "none", because these ids mostly sit inside parentheses
 * already: "(none -> f360a42de9)", never "((none) -> f360a42de9)".
 */
export const short = (id: string | null | undefined): string => (id ? id.slice(0, 10) : 'none')

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

const mark = {added: 'A', modified: 'M', deleted: 'D'} as const

function describeRow(r: RowChangeView): string {
  const parts: string[] = []
  const ref = (b: {id: string; size: number}): string => `${short(b.id)}, ${formatBytes(b.size)}`
  for (const l of r.layers) {
    if (r.status !== 'modified') parts.push(l.layer)
    // A NULL blob is a layer taken off the tile, not a changed or deleted tile.
    else if (l.change === 'removed') parts.push(`${l.layer} removed (was ${ref(l.old!)})`)
    else if (l.change === 'added') parts.push(`${l.layer} added (${ref(l.new!)})`)
    else parts.push(`${l.layer}: ${short(l.old!.id)} (${formatBytes(l.old!.size)}) -> ${short(l.new!.id)} (${formatBytes(l.new!.size)})`)
  }
  if (r.columns.length) parts.push(`columns: ${r.columns.join(', ')}`)
  return parts.join('; ')
}

/** Lines for a change set: one per tile and per changed row of other tables; `stat` gives counts only. */
export function formatChangeSet(set: ChangeSet, options: {stat?: boolean; limit?: number} = {}): string[] {
  const lines: string[] = []
  for (const t of set.tables) {
    const label = t.isTileTable ? `tiles (${t.table})` : `table ${t.table}`
    lines.push(`${label}: ${t.added} added, ${t.modified} modified, ${t.deleted} deleted`)
    if (options.stat) continue
    const rows = options.limit ? t.rows.slice(0, options.limit) : t.rows
    for (const r of rows) {
      const what = describeRow(r)
      lines.push(`  ${mark[r.status]} ${t.isTileTable ? `tile ${r.key}` : r.key}${what ? `  ${what}` : ''}`)
    }
    if (rows.length < t.rows.length) lines.push(`  … ${t.rows.length - rows.length} more (use --json for all)`)
  }
  for (const c of set.schema) lines.push(`schema: ${describeSchemaChange(c, set)}`)
  if (set.schemaChanged && set.schema.length === 0) lines.push('schema changed')
  for (const h of set.headerChanges ?? []) lines.push(h)
  return lines
}

/** What is versioned and what is left out, for `init` and `status`. */
export function formatShapeReport(report: ShapeReport, options: {versioned?: boolean} = {}): string[] {
  const lines: string[] = []
  if (options.versioned !== false) {
    lines.push('  versioned:')
    for (const v of report.versioned) lines.push(`    ${v.name}: ${v.how}`)
  }
  if (report.leftOut.length) {
    lines.push('  left out:')
    for (const l of report.leftOut) lines.push(`    ${l.name}: ${l.why}`)
  }
  if (options.versioned !== false) for (const n of report.notes) lines.push(`  ${n}`)
  return lines
}

/** "column dark_mode added (image layer)", "column score added to table metadata", "index idx_x removed". */
export function describeSchemaChange(c: SchemaChange, set?: Pick<ChangeSet, 'tileTable' | 'layers'>): string {
  if (c.kind !== 'column') return `${c.kind} ${c.name} ${c.change}`
  const tile = set?.tileTable
  const prep = c.change === 'added' ? 'to' : c.change === 'removed' ? 'from' : 'in'
  const where = c.table === tile ? '' : ` ${prep} table ${c.table}`
  const layer = set?.layers.includes(c.name) && c.table === tile ? ' (image layer)' : ''
  return `column ${c.name} ${c.change}${where}${layer}`
}

/** One line per layer event, as `log --stat` prints them: "dark_mode removed from tile 3,4". */
export function layerEvents(set: ChangeSet, limit = 20): string[] {
  const events: string[] = []
  for (const t of set.tiles) {
    if (t.status !== 'modified') continue
    for (const l of t.layers) events.push(layerPhrase(l, t.key))
  }
  const shown = events.slice(0, limit)
  if (events.length > limit) shown.push(`… ${events.length - limit} more`)
  return shown
}

const verdictMark = {'pixels-identical': '=', 'nearly-identical': '~', changed: 'M'} as const
const verdictText = {'pixels-identical': 'pixels identical (re-encoded)', 'nearly-identical': 'nearly identical', changed: 'changed'} as const

/** Lines for `diff --perceptual`: the counts, then each modified tile's layers with their verdict. */
export function formatPerceptual(p: PerceptualDiff, options: {limit?: number; stat?: boolean} = {}): string[] {
  const c = p.counts
  const lines = [`perceptual: ${c.pixelsIdentical} pixels identical (re-encoded), ${c.nearlyIdentical} nearly identical (distance <= ${p.threshold} of 128 bits), ${c.changed} changed${c.noImageChange ? `, ${c.noImageChange} with no image changed` : ''}`]
  if (options.stat) return lines
  const tiles = options.limit ? p.tiles.slice(0, options.limit) : p.tiles
  for (const t of tiles) {
    const layers = t.layers.map((l) => `${l.layer}: ${verdictText[l.verdict]}${l.distance !== null && l.verdict !== 'pixels-identical' ? ` (distance ${l.distance})` : ''}`)
    lines.push(`  ${verdictMark[t.verdict]} tile ${t.key}  ${layers.join('; ')}`)
  }
  if (tiles.length < p.tiles.length) lines.push(`  … ${p.tiles.length - tiles.length} more (use --json for all)`)
  return lines
}
