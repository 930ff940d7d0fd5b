import {TilesyncError} from '../core/errors.js'
// better-sqlite3's type, not open-database's alias: open-database imports this module.
import type Database from 'better-sqlite3'

type Db = Database.Database

/** What to do about a damaged database: its pages cannot be trusted, so it is rebuilt from a commit. */
export const CORRUPT_HINT = 'write the last commit into a new file with `tilesync checkout HEAD --into restored.db`, check it, then put it in place of the damaged one (changes not committed cannot be read back from damaged pages; `tilesync status --rescan` shows which rows still read)'

export function corruptError(file: string, detail: string, cause?: unknown): TilesyncError {
  return new TilesyncError('DB_CORRUPT', `the database ${file} is damaged (${detail})`, {hint: CORRUPT_HINT, cause})
}

/**
 * SQLite's own check of the file: `quick` (PRAGMA quick_check) walks every page and record;
 * the full check (PRAGMA integrity_check) also compares every index with its table. Returns
 * SQLite's problem lines (empty when the database is sound).
 */
export function integrityProblems(db: Db, quick: boolean, max = 20): string[] {
  const rows = db.prepare(`PRAGMA ${quick ? 'quick_check' : 'integrity_check'}(${max})`).pluck(true).all() as string[]
  if (rows.length === 1 && rows[0] === 'ok') return []
  // One problem a line; SQLite heads them with the schema's name.
  return rows.flatMap((r) => r.split('\n')).map((l) => l.trim()).filter((l) => l && !/^\*\*\* in database/.test(l))
}

/** Throws DB_CORRUPT naming the first problem when the database fails SQLite's check. */
export function assertIntact(db: Db, quick = true): void {
  let problems: string[]
  try {
    problems = integrityProblems(db, quick, 5)
  } catch (error) {
    const code = (error as {code?: string}).code ?? ''
    if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') throw corruptError(db.name, (error as Error).message, error)
    throw error
  }
  if (problems.length) throw corruptError(db.name, `PRAGMA ${quick ? 'quick_check' : 'integrity_check'}: ${problems[0]}${problems.length > 1 ? `, and ${problems.length - 1} more` : ''}`)
}
