import type {ChangeSet, RowChangeView} from '../snapshot/change-set.js'

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
  for (const l of r.layers) {
    const o = l.old ? `${short(l.old.id)} (${formatBytes(l.old.size)})` : 'NULL'
    const n = l.new ? `${short(l.new.id)} (${formatBytes(l.new.size)})` : 'NULL'
    parts.push(r.status === 'modified' ? `${l.layer}: ${o} -> ${n}` : l.layer)
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
  if (set.schemaChanged) lines.push('schema changed')
  return lines
}
