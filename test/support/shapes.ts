import Database from 'better-sqlite3'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {clone} from '../../src/ops/clone.js'
import {initRepository, type InitOptions} from '../../src/ops/init.js'
import {push} from '../../src/ops/push.js'
import {addRemote} from '../../src/ops/remotes.js'
import {Workspace} from '../../src/workspace/workspace.js'
import {tmpDir} from './fixtures.js'

export const author = {name: 'Shapes', email: 'shapes@example.com'}

/**
 * A project whose database is made by `sql`, run the way a user's own tools would: SQLite's
 * defaults (foreign keys off, as in Python's sqlite3 and the sqlite3 shell).
 */
export async function projectWith(sql: string, init: Omit<InitOptions, 'dir' | 'db'> = {}): Promise<{dir: string; db: string; ws: Workspace}> {
  const dir = tmpDir('shape')
  const db = path.join(dir, 'data.db')
  run(db, sql)
  await initRepository({dir, db: 'data.db', ...init})
  return {dir, db, ws: await Workspace.open(dir)}
}

/** Runs SQL on a fresh connection with SQLite's own defaults (better-sqlite3 turns foreign keys on). */
export function run(db: string, sql: string, fk = false): void {
  const d = new Database(db)
  try {
    d.pragma(`foreign_keys = ${fk ? 'ON' : 'OFF'}`)
    d.exec(sql)
  } finally {
    d.close()
  }
}

export function query<T = Record<string, unknown>>(db: string, sql: string, ...params: unknown[]): T[] {
  const d = new Database(db, {readonly: true})
  try {
    return d.prepare(sql).all(...params) as T[]
  } finally {
    d.close()
  }
}

/**
 * Pushes branch main to a directory remote (made on first use) and clones `commitId` (default
 * HEAD) from it into a new directory; returns the clone's database.
 */
export async function cloneOf(ws: Workspace, commitId?: string): Promise<{db: string; ws: Workspace}> {
  const remote = path.join(tmpDir('shape-remote'), 'r')
  if (!ws.repo.config.remotes.origin) await addRemote(ws.repo, 'origin', remote)
  await push(ws, {branch: 'main', force: true})
  const dir = path.join(tmpDir('shape-clone'), 'c')
  const r = await clone({url: ws.repo.config.remotes.origin.url, dir, commit: commitId ?? (await ws.repo.refs.headCommit()) ?? undefined})
  return {db: path.join(dir, r.database), ws: await Workspace.open(dir)}
}

const cell = (type: string, v: unknown): string => {
  if (type === 'real') return `r:${Object.is(v, -0) ? '-0' : String(v)}`
  if (type === 'text' || type === 'blob') return `${type[0]}:${(v as Buffer).toString('hex')}`
  return `${type[0]}:${String(v)}`
}

/**
 * Everything a database holds that tilesync promises to give back, to the byte: each user
 * table's rows (typeof and value of every column, generated ones included; TEXT as its raw
 * bytes; the rowid where it is the key), the schema, the AUTOINCREMENT counters and the
 * user_version / application_id header fields. Virtual tables are read through themselves.
 */
export function exactDump(file: string, options: {noRowid?: string[]} = {}): Record<string, unknown> {
  if (!fs.existsSync(file)) throw new Error(`no database at ${file}`)
  const db = new Database(file, {readonly: true})
  try {
    const kinds = new Map((db.prepare(`SELECT name, type FROM pragma_table_list WHERE schema = 'main'`).all() as Array<{name: string; type: string}>).map((r) => [r.name, r.type]))
    const own = (n: string): boolean => n === '_tilesync_changes' || n === '_tilesync_state'
    const out: Record<string, unknown> = {}
    const tables = (db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as Array<{name: string; sql: string}>)
      .filter((t) => !own(t.name) && !t.name.toLowerCase().startsWith('sqlite_') && kinds.get(t.name) !== 'shadow')
    for (const {name, sql} of tables) {
      if (/content\s*=/i.test(sql) && /VIRTUAL/i.test(sql)) continue
      const q = `"${name.replaceAll('"', '""')}"`
      const cols = (db.prepare(`PRAGMA table_xinfo(${q})`).all() as Array<{name: string; pk: number; hidden: number}>).filter((c) => c.hidden !== 1)
      const withRowid = !/WITHOUT\s+ROWID\s*$/i.test(sql) && !cols.some((c) => c.pk > 0) && !/rtree/i.test(sql) && !options.noRowid?.includes(name)
      const exprs = [...(withRowid ? ['rowid'] : []), ...cols.map((c) => `"${c.name.replaceAll('"', '""')}"`)]
      const sel = exprs.map((e) => `typeof(${e}), CASE WHEN typeof(${e}) = 'text' THEN CAST(${e} AS BLOB) ELSE ${e} END`).join(', ')
      const rows = db.prepare(`SELECT ${sel} FROM ${q}`).raw(true).safeIntegers(true).all() as unknown[][]
      out[name] = rows.map((r) => {
        const cells: string[] = []
        for (let i = 0; i < r.length; i += 2) cells.push(cell(r[i] as string, r[i + 1]))
        return cells.join(' | ')
      }).sort()
    }
    out.__schema = (db.prepare(`SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name`).raw(true).all() as string[][])
      .filter((e) => !own(e[1]) && !own(e[2]) && kinds.get(e[2]) !== 'shadow' && !e[1].toLowerCase().startsWith('sqlite_') && !(e[0] === 'trigger' && e[1].startsWith('_tilesync_') && (e[3].includes('INSERT INTO _tilesync_changes ') || e[3].includes('UPDATE _tilesync_state SET value = '))))
    const seq = db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'`).get()
      ? (db.prepare(`SELECT name, seq FROM sqlite_sequence WHERE name != '_tilesync_changes' ORDER BY name`).raw(true).all())
      : []
    out.__sequence = seq
    out.__header = [db.pragma('user_version', {simple: true}), db.pragma('application_id', {simple: true})]
    return out
  } finally {
    db.close()
  }
}
