import Database from 'better-sqlite3'

import {hashBytes} from '../core/hash.js'
import {NULL_CELL, type TypedCell} from './layout-compare.js'
import {tokenize} from './schema-text.js'

const cache = new Map<string, Map<string, TypedCell>>()
let scratch: Database.Database | undefined

function scratchDb(): Database.Database {
  scratch ??= new Database(':memory:')
  return scratch
}

/**
 * What each column of a table holds when a row was written without it: its DEFAULT (with the
 * column's type affinity applied, as SQLite stores it), or NULL. That is the value every row
 * gets when `ALTER TABLE ... ADD COLUMN flagged INTEGER DEFAULT 0` runs, so a row of the old
 * layout and the same row of the new one are equal when the new column holds its default.
 * Defaults that are not constants (CURRENT_TIMESTAMP, function calls) count as NULL.
 */
export function columnDefaults(createSql: string): Map<string, TypedCell> {
  const hit = cache.get(createSql)
  if (hit) return hit
  const out = new Map<string, TypedCell>()
  const db = scratchDb()
  try {
    db.exec('SAVEPOINT tilesync_defaults')
    try {
      db.exec(createSql)
      const name = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).get() as {name: string} | undefined)?.name
      if (name) {
        const cols = db.prepare(`PRAGMA table_xinfo("${name.replaceAll('"', '""')}")`).all() as Array<{name: string; type: string; dflt_value: string | null; hidden: number}>
        for (const c of cols) {
          if (c.hidden !== 0 || c.dflt_value === null || !isConstant(c.dflt_value)) continue
          const cell = evaluate(db, c.type ?? '', c.dflt_value)
          if (cell) out.set(c.name, cell)
        }
      }
    } finally {
      db.exec('ROLLBACK TO tilesync_defaults; RELEASE tilesync_defaults')
    }
  } catch {
    // A statement the scratch database cannot replay: every default counts as NULL.
  }
  if (cache.size > 256) cache.clear()
  cache.set(createSql, out)
  return out
}

export interface ColumnFacts {
  declType: string
  notNull: boolean
  /** Generated (SQLite computes it) or hidden. */
  computed: boolean
}

const factsCache = new Map<string, Map<string, ColumnFacts>>()

/** Declared type and NOT NULL of each column of a CREATE TABLE statement, read back from SQLite itself. */
export function columnFacts(createSql: string): Map<string, ColumnFacts> {
  const hit = factsCache.get(createSql)
  if (hit) return hit
  const out = new Map<string, ColumnFacts>()
  const db = scratchDb()
  try {
    db.exec('SAVEPOINT tilesync_facts')
    try {
      db.exec(createSql)
      const name = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).get() as {name: string} | undefined)?.name
      if (name) {
        for (const c of db.prepare(`PRAGMA table_xinfo("${name.replaceAll('"', '""')}")`).all() as Array<{name: string; type: string; notnull: number; hidden: number}>) {
          out.set(c.name, {declType: c.type ?? '', notNull: c.notnull === 1, computed: c.hidden !== 0})
        }
      }
    } finally {
      db.exec('ROLLBACK TO tilesync_facts; RELEASE tilesync_facts')
    }
  } catch {
    // Not replayable: nothing known.
  }
  if (factsCache.size > 256) factsCache.clear()
  factsCache.set(createSql, out)
  return out
}

function isConstant(expr: string): boolean {
  const tokens = tokenize(expr)
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]
    if (t.kind !== 'word') continue
    if (/^\d[\dA-Za-z.]*$/.test(t.text) || /^(TRUE|FALSE|NULL)$/i.test(t.text)) continue
    if (/^x$/i.test(t.text) && tokens[i + 1]?.kind === 'string') continue
    return false
  }
  return true
}

function evaluate(db: Database.Database, declType: string, expr: string): TypedCell | null {
  try {
    db.exec(`CREATE TEMP TABLE "_tilesync_default" ("c" ${declType.replace(/[;]/g, '')})`)
    try {
      db.exec(`INSERT INTO "_tilesync_default" VALUES (${expr})`)
      const v = db.prepare('SELECT "c" AS v FROM "_tilesync_default"').safeIntegers(true).get() as {v: unknown}
      return toTypedCell(v.v)
    } finally {
      db.exec('DROP TABLE temp."_tilesync_default"')
    }
  } catch {
    return null
  }
}

function toTypedCell(v: unknown): TypedCell {
  if (v === null || v === undefined) return NULL_CELL
  if (typeof v === 'bigint') return {type: 'i', value: v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v}
  if (typeof v === 'number') return {type: 'r', value: v}
  if (typeof v === 'string') return {type: 't', value: v}
  const bytes = v as Buffer
  return {type: 'b', value: {id: hashBytes(bytes), size: bytes.length}}
}

/**
 * `value` stored into a column of this declared type, as SQLite would store it (its type
 * affinity applied): 0 into a REAL column is 0.0, '7' into an INTEGER column is 7.
 */
export function withAffinity(declType: string, value: number | string | null): TypedCell {
  const db = scratchDb()
  try {
    db.exec(`CREATE TEMP TABLE "_tilesync_affinity" ("c" ${declType.replace(/[;]/g, '')})`)
    try {
      db.prepare('INSERT INTO "_tilesync_affinity" VALUES (?)').run(typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : value)
      return toTypedCell((db.prepare('SELECT "c" AS v FROM "_tilesync_affinity"').safeIntegers(true).get() as {v: unknown}).v)
    } finally {
      db.exec('DROP TABLE temp."_tilesync_affinity"')
    }
  } catch {
    return value === null ? NULL_CELL : typeof value === 'string' ? {type: 't', value} : {type: Number.isInteger(value) ? 'i' : 'r', value}
  }
}
