import Database from 'better-sqlite3'
import {closeSync, openSync, readSync, statSync} from 'node:fs'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import {CORRUPT_HINT, corruptError} from './integrity.js'

export type Db = Database.Database

const SQLITE_HEADER = 'SQLite format 3\u0000'

/** How long to wait for another process's lock before giving up with DB_LOCKED. */
export function busyTimeoutMs(): number {
  const v = Number(process.env.TILESYNC_BUSY_TIMEOUT_MS)
  return Number.isFinite(v) && v >= 0 ? v : 5_000
}

/** After this long waiting for a lock, tilesync says that it waits. */
export const WAIT_NOTICE_MS = 1_000
const WAIT_SLICE_MS = 100

let waitNotice: (text: string) => void = (text) => {
  try {
    process.stderr.write(`tilesync: ${text}\n`)
  } catch {}
}

/** Where "waiting for the database" goes (stderr by default; tests collect it). */
export function setWaitNotice(fn: (text: string) => void): (text: string) => void {
  const before = waitNotice
  waitNotice = fn
  return before
}

const isBusy = (error: unknown): boolean => /^SQLITE_(BUSY|LOCKED)/.test((error as {code?: string}).code ?? '')

/**
 * Runs `fn` (one statement, or a whole transaction that rolls back on failure) until it gets
 * the lock it needs, for up to the busy timeout: SQLite waits in slices of 100 ms, so that
 * after a second tilesync can say it is waiting for another program (a pipeline in the middle
 * of a write transaction) instead of looking hung. Throws SQLite's BUSY error after that.
 */
export function waitingForLock<T>(db: Db, fn: () => T): T {
  const limit = busyTimeoutMs()
  const started = Date.now()
  let told = false
  const before = Number(db.pragma('busy_timeout', {simple: true}))
  db.pragma(`busy_timeout = ${Math.min(WAIT_SLICE_MS, limit)}`)
  try {
    for (;;) {
      try {
        return fn()
      } catch (error) {
        const waited = Date.now() - started
        if (!isBusy(error) || waited >= limit) throw error
        if (!told && waited >= WAIT_NOTICE_MS) {
          told = true
          waitNotice(`waiting for the database ${db.name}: another program is writing it (up to ${(limit / 1000).toFixed(limit % 1000 ? 1 : 0)} s, TILESYNC_BUSY_TIMEOUT_MS)`)
        }
      }
    }
  } finally {
    db.pragma(`busy_timeout = ${before}`)
  }
}

/**
 * Opens the user's database after checking it really is SQLite, so a wrong path or a
 * truncated file is refused before anything reads or writes it.
 */
/** The database this process opened last: named in errors that reach the command line untranslated. */
let lastOpened: string | null = null
export const lastDatabasePath = (): string | null => lastOpened

/** Runs `fn`, turning SQLite's errors into one-line TilesyncErrors naming `db`'s file. */
export function translated<T>(db: Db, fn: () => T): T {
  try {
    return fn()
  } catch (error) {
    throw translateSqliteError(error, db.name)
  }
}

export function openDatabase(file: string, options: {readonly?: boolean; recovered?: boolean} = {}): Db {
  lastOpened = file
  assertSqliteFile(file)
  let db: Db | undefined
  try {
    db = new Database(file, {readonly: options.readonly ?? false, fileMustExist: true, timeout: busyTimeoutMs()})
    // Touch the schema now so a damaged file fails here, with a clear message.
    db.prepare('SELECT count(*) FROM sqlite_master').get()
    withSqliteDefaults(db)
  } catch (error) {
    db?.close()
    const code = (error as {code?: string}).code
    if (options.readonly && !options.recovered && (code === 'SQLITE_READONLY_ROLLBACK' || code === 'SQLITE_READONLY_RECOVERY')) {
      // A writer was killed mid-transaction and left a hot journal. A read-only connection
      // cannot roll it back; one read-write open does (restoring the last committed state,
      // as any SQLite writer would), then the read-only open works.
      try {
        const rw = new Database(file, {fileMustExist: true, timeout: busyTimeoutMs()})
        try {
          rw.prepare('SELECT count(*) FROM sqlite_master').get()
        } finally {
          rw.close()
        }
      } catch (recoverError) {
        throw translateSqliteError(recoverError, file)
      }
      return openDatabase(file, {readonly: true, recovered: true})
    }
    throw translateSqliteError(error, file)
  }
  return db
}

/**
 * Page size of a database tilesync builds from nothing (clone). SQLite's default of 4 KiB
 * splits a 350 KB tile image over ~90 overflow pages, each its own write; 16 KiB pages
 * halved the time to insert 1.3 GB of tiles (1.65 s to 0.87 s, 64 KiB: 0.65 s) at 0.2% more
 * file size, while keeping what one small row update rewrites small. The rows are the same
 * at any page size; a user who wants another runs `PRAGMA page_size = N; VACUUM;`.
 */
export const CREATED_PAGE_SIZE = 16_384

/** Creates a new empty database (clone). */
export function createDatabase(file: string): Db {
  lastOpened = file
  let db: Db
  try {
    db = new Database(file, {timeout: busyTimeoutMs()})
  } catch (error) {
    throw translateSqliteError(error, file)
  }
  // Takes effect because nothing has been written yet.
  db.pragma(`page_size = ${CREATED_PAGE_SIZE}`)
  return withSqliteDefaults(db)
}

/**
 * better-sqlite3 is built with foreign keys and recursive triggers ON; SQLite (and Python's
 * sqlite3, and the sqlite3 shell) has both off. tilesync writes whole consistent states, and
 * with foreign keys on, deleting or replacing a parent row would cascade into (or null) child
 * rows that the state keeps, and a clone would refuse a child table that sorts before its
 * parent. It can only be changed outside a transaction, so every connection starts this way.
 */
function withSqliteDefaults(db: Db): Db {
  db.pragma('foreign_keys = OFF')
  db.pragma('recursive_triggers = OFF')
  return db
}

export function assertSqliteFile(file: string): void {
  let size: number
  try {
    const st = statSync(file)
    if (!st.isFile()) throw new Error('not a file')
    size = st.size
  } catch {
    throw new TilesyncError('DB_MISSING', `database not found: ${file}`, {
      hint: 'check the path, or pass --db PATH to `tilesync init`',
    })
  }
  if (size === 0) return // SQLite treats an empty file as an empty database.
  const fd = openSync(file, 'r')
  const head = Buffer.alloc(16)
  try {
    readSync(fd, head, 0, 16, 0)
  } finally {
    closeSync(fd)
  }
  if (size < 100 || head.toString('latin1') !== SQLITE_HEADER) {
    throw new TilesyncError('NOT_SQLITE', `${file} is not a SQLite database`, {
      hint: 'point tilesync at the .db file your pipeline writes (e.g. generations/v01/quadrants.db)',
    })
  }
}

/** Maps SQLite's error codes onto tilesync's, so users see one line that says what to do. */
export function translateSqliteError(error: unknown, file: string): unknown {
  const code = (error as {code?: string}).code ?? ''
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new TilesyncError('DB_LOCKED', `the database ${file} is busy: it is locked by another process (another program is writing it) and stayed so for the ${busyTimeoutMs() / 1000} s tilesync waits`, {
      hint: 'try again when that program is between writes, or set TILESYNC_BUSY_TIMEOUT_MS to wait longer (e.g. TILESYNC_BUSY_TIMEOUT_MS=30000); nothing was changed',
      cause: error,
    })
  }
  if (code === 'SQLITE_NOTADB') {
    return new TilesyncError('NOT_SQLITE', `${file} is not a valid SQLite database (${code})`, {
      hint: `check the path; if it is your database and it was damaged, ${CORRUPT_HINT}`,
      cause: error,
    })
  }
  if (code.startsWith('SQLITE_CORRUPT')) return corruptError(file, (error as Error).message, error)
  if (code === 'SQLITE_FULL') {
    return new TilesyncError('DISK_FULL', `the disk is full while writing ${file}`, {hint: 'free some space; the database was left unchanged', cause: error})
  }
  const said = (error as Error).message
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH') {
    const where = code === 'SQLITE_READONLY_DIRECTORY' || code.startsWith('SQLITE_CANTOPEN')
      ? `the directory ${path.dirname(file)} is not writable (SQLite writes its journal next to the database) or the file cannot be opened`
      : 'the file is read-only for this user'
    return new TilesyncError('DB_READONLY', `cannot write the database ${file}: ${where} (SQLite: ${said})`, {
      hint: 'give this user write permission on the database file and its directory, or run tilesync as the user who owns them; nothing was changed',
      cause: error,
    })
  }
  if (code.startsWith('SQLITE_CONSTRAINT')) {
    return new TilesyncError('DB_CONSTRAINT', `SQLite refused a write to ${file}: ${said}`, {
      hint: 'the rows being written break a constraint of the database as it is now (e.g. a UNIQUE index another row fills); nothing was changed: commit or check out the whole revision instead of single tiles, or fix the conflicting row',
      cause: error,
    })
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return new TilesyncError('DB_ERROR', `reading or writing ${file} failed (SQLite: ${said}, ${code})`, {hint: 'check the disk and the file system; nothing was changed', cause: error})
  }
  if (code.startsWith('SQLITE_')) {
    return new TilesyncError('DB_ERROR', `SQLite failed on ${file}: ${said} (${code})`, {
      hint: /fts[345]|rtree|no such module|tokenizer/i.test(said)
        ? 'the database uses a full-text or R*Tree table this SQLite cannot write (a tokenizer or module only its application registers?); nothing was changed (`tilesync status --verbose` shows what tilesync versions)'
        : 'nothing was changed; `tilesync fsck` checks the database',
      cause: error,
    })
  }
  return error
}
