import {TilesyncError} from '../core/errors.js'
import type {SchemaEntry} from './model.js'
import {parseCreateTable} from './schema-text.js'

/**
 * Tables and columns left out of versioning (`tilesync ignore`): a work queue the app rewrites
 * every few seconds, a log, a per-user flag. Their data is never read for status, commit or
 * diff, and never written by checkout, merge, pull, import or clone. Their CREATE statements
 * stay in each snapshot's schema, so a clone creates them (empty), and the app starts.
 *
 * Entries are `TABLE` or `TABLE.COLUMN` (a table name containing a dot is written in double
 * quotes: `"my.table".col`).
 */
export class IgnoreRules {
  static readonly NONE = new IgnoreRules([])

  private readonly tables = new Set<string>()
  private readonly columns = new Map<string, Set<string>>()

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const {table, column} = parseIgnoreEntry(e)
      if (column === undefined) this.tables.add(table)
      else {
        const set = this.columns.get(table) ?? new Set<string>()
        set.add(column)
        this.columns.set(table, set)
      }
    }
  }

  get isEmpty(): boolean {
    return this.tables.size === 0 && this.columns.size === 0
  }

  tableIgnored(table: string): boolean {
    return this.tables.has(table)
  }

  /** Ignored columns of a versioned table (empty for an ignored table: all of it is). */
  columnsOf(table: string): ReadonlySet<string> {
    return this.columns.get(table) ?? EMPTY
  }

  /** Whether anything of the table is ignored (the table, or some of its columns). */
  touches(table: string): boolean {
    return this.tables.has(table) || this.columns.has(table)
  }

  union(other: IgnoreRules | undefined): IgnoreRules {
    if (!other || other.isEmpty || other === this) return this
    if (this.isEmpty) return other
    return new IgnoreRules([...this.entries(), ...other.entries()])
  }

  /** Entries in a stable order: tables, then columns, each sorted. */
  entries(): string[] {
    const out = [...this.tables].sort().map(formatTable)
    for (const t of [...this.columns.keys()].sort()) for (const c of [...this.columns.get(t)!].sort()) out.push(`${formatTable(t)}.${c}`)
    return out
  }

  get tableNames(): string[] {
    return [...this.tables].sort()
  }

  get columnEntries(): Array<{table: string; column: string}> {
    return [...this.columns].flatMap(([table, cols]) => [...cols].map((column) => ({table, column})))
  }
}

const EMPTY: ReadonlySet<string> = new Set()

const formatTable = (t: string): string => (t.includes('.') || t.includes('"') ? `"${t.replaceAll('"', '""')}"` : t)

/** `quadrants`, `quadrants.flagged`, `"odd.name".col` -> table and optional column. */
export function parseIgnoreEntry(entry: string): {table: string; column?: string} {
  const bad = (): TilesyncError => new TilesyncError('BAD_ARGUMENT', `"${entry}" is not TABLE or TABLE.COLUMN`, {
    hint: 'e.g. `tilesync ignore generation_queue` or `tilesync ignore quadrants.flagged`',
  })
  const text = entry.trim()
  if (!text) throw bad()
  let table: string
  let rest: string
  if (text.startsWith('"')) {
    let i = 1
    let name = ''
    for (; i < text.length; i++) {
      if (text[i] === '"') {
        if (text[i + 1] === '"') {
          name += '"'
          i++
          continue
        }
        break
      }
      name += text[i]
    }
    if (i >= text.length || !name) throw bad()
    table = name
    rest = text.slice(i + 1)
  } else {
    const dot = text.indexOf('.')
    table = dot < 0 ? text : text.slice(0, dot)
    rest = dot < 0 ? '' : text.slice(dot)
  }
  if (rest === '') return {table}
  if (!rest.startsWith('.') || rest.length < 2) throw bad()
  return {table, column: rest.slice(1)}
}

/**
 * What a snapshot itself says was left out: ordinary tables its schema creates but that have
 * no rows recorded, and stored columns of its tables' CREATE statements that the recorded
 * rows lack. A clone learns the ignore list from the commit it checks out this way.
 */
export function ignoredInSnapshot(schema: readonly SchemaEntry[], tables: ReadonlyMap<string, {columns: Array<{name: string}>}>): IgnoreRules {
  const entries: string[] = []
  for (const e of schema) {
    if (e.type !== 'table' || /^\s*CREATE\s+VIRTUAL\s/i.test(e.sql)) continue
    const table = tables.get(e.name)
    if (!table) {
      entries.push(formatTable(e.name))
      continue
    }
    const def = parseCreateTable(e.sql)
    if (!def) continue
    const recorded = new Set(table.columns.map((c) => c.name))
    for (const c of def.columns) if (!c.generated && !recorded.has(c.name)) entries.push(`${formatTable(e.name)}.${c.name}`)
  }
  return new IgnoreRules(entries)
}
