import Database from 'better-sqlite3'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import {generateDatabase, type GenerateOptions} from '../../src/sample/generate-database.js'
import {makeTilePng} from '../../src/sample/tile-png.js'

const created: string[] = []

export function tmpDir(label = 'tilesync'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`))
  created.push(dir)
  return dir
}

after('remove the tests\' temporary directories', function () {
  // Every test's directories at once: on a busy disk this outlasts the per-test timeout.
  this.timeout(10 * 60_000)
  if (process.env.TILESYNC_KEEP_TMP) return
  for (const d of created) fs.rmSync(d, {recursive: true, force: true})
})

export const DB_REL = 'generations/v01/quadrants.db'

/** A project directory holding a generated generations database at the default path. */
export function makeProject(options: Partial<GenerateOptions> = {}): {dir: string; db: string} {
  const dir = tmpDir('project')
  const db = path.join(dir, DB_REL)
  generateDatabase(db, {width: 6, height: 5, imageSize: 16, ...options})
  return {dir, db}
}

/**
 * Every row of every user table with SQLite's own type of each value, so "identical" means
 * identical to the byte: INTEGER vs REAL, NULL vs empty, blob bytes.
 */
export function dumpDatabase(file: string): Record<string, unknown[]> {
  const db = new Database(file, {readonly: true})
  try {
    const out: Record<string, unknown[]> = {}
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name NOT IN ('_tilesync_changes', '_tilesync_state') ORDER BY name`).all() as Array<{name: string}>).map((r) => r.name)
    for (const t of tables) {
      const cols = (db.prepare(`PRAGMA table_xinfo("${t}")`).all() as Array<{name: string}>).map((c) => c.name)
      const sel = cols.map((c) => `typeof("${c}"), hex("${c}")`).join(', ')
      out[t] = db.prepare(`SELECT ${sel} FROM "${t}" ORDER BY ${cols.map((_, i) => i * 2 + 2).join(", ")}`).raw(true).all()
    }
    out.__schema = db.prepare(`SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT IN ('_tilesync_changes', '_tilesync_state') AND NOT (type = 'trigger' AND name GLOB '_tilesync_*' AND (sql LIKE '%INSERT INTO _tilesync_changes %' OR sql LIKE '%UPDATE _tilesync_state SET value = %')) ORDER BY type, name`).raw(true).all()
    return out
  } finally {
    db.close()
  }
}

export function withDb<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file)
  try {
    return fn(db)
  } finally {
    db.close()
  }
}

export function png(seed: number, size = 16): Buffer {
  return makeTilePng(size, seed)
}
