/**
 * Just enough of SQLite's DDL grammar to take a CREATE TABLE statement apart into its column
 * definitions and table constraints, and to list the columns a CREATE INDEX names. Used to
 * compare schemas column by column (a column the pipeline added at run time, or one left out
 * of versioning, must not make two tables "different") and to add or drop single columns
 * instead of rebuilding a table.
 *
 * It tokenizes (quotes, brackets, backticks, comments) rather than matching regexes, so a
 * comma or parenthesis inside a string, a CHECK expression or a quoted name is never mistaken
 * for a separator. Anything it cannot take apart is reported as null and callers fall back to
 * comparing the whole statement.
 */

export interface ColumnDef {
  /** The column's name, unquoted. */
  name: string
  /** The definition as written (name, type, constraints), trimmed. */
  text: string
  /** GENERATED ALWAYS AS (...) / AS (...): SQLite computes it, it is never stored by tilesync. */
  generated: boolean
}

export interface TableDef {
  /** Everything before the opening parenthesis of the column list ("CREATE TABLE x"). */
  head: string
  columns: ColumnDef[]
  /** Table constraints (PRIMARY KEY (...), UNIQUE, CHECK, FOREIGN KEY, CONSTRAINT ...), trimmed. */
  constraints: string[]
  /** What follows the closing parenthesis (WITHOUT ROWID, STRICT), trimmed. */
  tail: string
}

interface Token {
  text: string
  start: number
  end: number
  kind: 'word' | 'quoted' | 'punct' | 'string' | 'other'
}

/** Splits SQL into tokens, skipping whitespace and comments. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = []
  let i = 0
  const n = sql.length
  while (i < n) {
    const c = sql[i]
    if (/\s/.test(c)) {
      i++
      continue
    }
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++
      continue
    }
    if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2)
      i = end < 0 ? n : end + 2
      continue
    }
    const start = i
    if (c === "'" || c === '"' || c === '`') {
      i++
      while (i < n) {
        if (sql[i] === c) {
          if (sql[i + 1] === c) {
            i += 2
            continue
          }
          i++
          break
        }
        i++
      }
      out.push({text: sql.slice(start, i), start, end: i, kind: c === "'" ? 'string' : 'quoted'})
      continue
    }
    if (c === '[') {
      const end = sql.indexOf(']', i + 1)
      i = end < 0 ? n : end + 1
      out.push({text: sql.slice(start, i), start, end: i, kind: 'quoted'})
      continue
    }
    if (/[A-Za-z0-9_$\u0080-\uffff]/.test(c)) {
      while (i < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[i])) i++
      out.push({text: sql.slice(start, i), start, end: i, kind: 'word'})
      continue
    }
    i++
    out.push({text: c, start, end: i, kind: c === '(' || c === ')' || c === ',' || c === '.' ? 'punct' : 'other'})
  }
  return out
}

/** The name a token stands for: quotes removed (and doubled quotes undone). */
export function identifierOf(token: {text: string; kind: string}): string {
  const t = token.text
  if (token.kind === 'quoted') {
    if (t.startsWith('[')) return t.slice(1, -1)
    const q = t[0]
    return t.slice(1, -1).replaceAll(q + q, q)
  }
  if (token.kind === 'string') return t.slice(1, -1).replaceAll("''", "'")
  return t
}

const CONSTRAINT_WORDS = new Set(['CONSTRAINT', 'PRIMARY', 'UNIQUE', 'CHECK', 'FOREIGN'])

/** Takes a CREATE TABLE statement apart; null for CREATE TABLE ... AS SELECT, virtual tables, or anything unexpected. */
export function parseCreateTable(sql: string): TableDef | null {
  const tokens = tokenize(sql)
  if (tokens.length < 4 || tokens[0].text.toUpperCase() !== 'CREATE') return null
  if (tokens.some((t, i) => i < 4 && t.text.toUpperCase() === 'VIRTUAL')) return null
  const open = tokens.findIndex((t) => t.text === '(')
  if (open < 0) return null
  // Only names (and IF NOT EXISTS, TEMP) may come before the column list.
  if (tokens.slice(0, open).some((t) => t.kind === 'punct' && t.text !== '.')) return null
  let depth = 0
  let close = -1
  const parts: Array<[number, number]> = []
  let partStart = open + 1
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i]
    if (t.text === '(') depth++
    else if (t.text === ')') {
      depth--
      if (depth === 0) {
        parts.push([partStart, i])
        close = i
        break
      }
    } else if (t.text === ',' && depth === 1) {
      parts.push([partStart, i])
      partStart = i + 1
    }
  }
  if (close < 0) return null
  const columns: ColumnDef[] = []
  const constraints: string[] = []
  for (const [a, b] of parts) {
    if (a >= b) return null
    const first = tokens[a]
    const text = sql.slice(first.start, tokens[b - 1].end).trim()
    if (first.kind === 'word' && CONSTRAINT_WORDS.has(first.text.toUpperCase())) {
      constraints.push(text)
      continue
    }
    if (first.kind !== 'word' && first.kind !== 'quoted' && first.kind !== 'string') return null
    let generated = false
    let d = 0
    for (let i = a + 1; i < b; i++) {
      const t = tokens[i]
      if (t.text === '(') d++
      else if (t.text === ')') d--
      else if (d === 0 && t.kind === 'word' && t.text.toUpperCase() === 'AS' && tokens[i + 1]?.text === '(') generated = true
    }
    columns.push({name: identifierOf(first), text, generated})
  }
  return {
    head: sql.slice(0, tokens[open].start).trim(),
    columns,
    constraints,
    tail: sql.slice(tokens[close].end).trim(),
  }
}

/** Collapses whitespace outside quotes, so layout differences do not count as changes. */
export function normalizeSql(sql: string): string {
  const tokens = tokenize(sql)
  let out = ''
  let prev: Token | null = null
  for (const t of tokens) {
    const glue = prev && (t.text === ')' || t.text === ',' || t.text === '.' || prev.text === '(' || prev.text === '.')
    // "tiles" and tiles name the same table (SQLite writes the quotes itself after a RENAME).
    const text = t.kind === 'quoted' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(identifierOf(t)) ? identifierOf(t) : t.text
    out += prev && !glue ? ` ${text}` : text
    prev = t
  }
  return out
}

/**
 * A table's definition without some columns, normalized, for comparisons only (never
 * executed): columns in their order, then the table constraints. Where SQLite appended a
 * column after a table constraint (ALTER TABLE ADD COLUMN does that), the result is the same
 * as for a table created with that column in its list.
 */
export function comparableTableSql(sql: string, without: ReadonlySet<string> = new Set()): string {
  const def = parseCreateTable(sql)
  if (!def) return normalizeSql(sql)
  const cols = def.columns.filter((c) => !without.has(c.name)).map((c) => normalizeSql(c.text))
  return `${normalizeSql(def.head)} (${[...cols, ...def.constraints.map(normalizeSql)].join(', ')})${def.tail ? ` ${normalizeSql(def.tail)}` : ''}`
}

/** The column names a CREATE INDEX statement mentions in its column list (and WHERE clause); null if it cannot tell. */
export function indexColumns(sql: string): {table: string; names: Set<string>} | null {
  const tokens = tokenize(sql)
  const on = tokens.findIndex((t) => t.kind === 'word' && t.text.toUpperCase() === 'ON')
  if (on < 0 || !tokens[on + 1]) return null
  let i = on + 1
  let table = identifierOf(tokens[i])
  if (tokens[i + 1]?.text === '.' && tokens[i + 2]) {
    i += 2
    table = identifierOf(tokens[i])
  }
  const names = new Set<string>()
  for (let j = i + 1; j < tokens.length; j++) {
    const t = tokens[j]
    if (t.kind === 'word' || t.kind === 'quoted') names.add(identifierOf(t))
  }
  return {table, names}
}
