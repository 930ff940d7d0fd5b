import {closeSync, openSync, readSync} from 'node:fs'

import type {Db} from './open-database.js'

/**
 * A cheap signal that the database file was written in a way the change record did not see:
 * incremental blob I/O (`sqlite3_blob_write`, Python's `Connection.blobopen`) fires no
 * trigger, nor do writes to virtual tables, to tables read in full, or PRAGMA user_version.
 *
 * SQLite's header holds a file change counter (4 bytes at offset 24) that every write
 * transaction in rollback-journal mode increments once. tilesync notes its value right after
 * each of its own transactions that leave the database equal to the baseline plus the record
 * (`file_counter`, with the record's last sequence number as `file_counter_seq`). Later:
 *   - counter unchanged: nothing at all was written since;
 *   - counter moved, record unchanged: something was written outside the record (`detected`);
 *   - counter moved, record grew (or a table the record does not hold was written: those have
 *     triggers that only count writes): it cannot tell (`unknown`): writes outside the record
 *     mixed with others are not seen.
 * In WAL mode SQLite does not maintain the counter, so the signal is `unavailable` there.
 * What it cannot see, checkout still catches: it re-reads every row it is about to overwrite.
 */
export type OutsideWrites = 'none' | 'detected' | 'unknown' | 'unavailable'

const counterFds = new WeakMap<Db, number>()

/**
 * A descriptor of the database file to read its header through, kept open until the
 * connection closes. Closing any descriptor of a file drops every POSIX lock this process
 * holds on it, SQLite's included (a write transaction's lock would be gone while it runs), so
 * it is closed only after SQLite has closed the connection and let go of its locks.
 */
function counterFd(db: Db): number | null {
  const known = counterFds.get(db)
  if (known !== undefined) return known
  let fd: number
  try {
    fd = openSync(db.name, 'r')
  } catch {
    return null
  }
  counterFds.set(db, fd)
  const close = db.close.bind(db)
  db.close = () => {
    try {
      return close()
    } finally {
      counterFds.delete(db)
      closeSync(fd)
    }
  }
  return fd
}

/** The header's file change counter, or null where it is not maintained (WAL mode, in-memory databases). */
export function fileChangeCounter(db: Db): number | null {
  if (db.memory || !db.name || !db.open) return null
  const mode = String(db.pragma('journal_mode', {simple: true})).toLowerCase()
  if (mode === 'wal') return null
  const fd = counterFd(db)
  if (fd === null) return null
  const head = Buffer.alloc(4)
  if (readSync(fd, head, 0, 4, 24) !== 4) return null
  return head.readUInt32BE(0)
}

/** The counter when each write transaction began (set by inTransaction), before any of its pages could reach the file. */
const writeStart = new WeakMap<Db, number | null>()

export function noteWriteStart(db: Db): void {
  writeStart.set(db, fileChangeCounter(db))
}

export function clearWriteStart(db: Db): void {
  writeStart.delete(db)
}

/** The counter the current write transaction started from (read now when it was not started by inTransaction). */
export function counterAtWriteStart(db: Db): number | null {
  return writeStart.has(db) ? writeStart.get(db)! : fileChangeCounter(db)
}

export function outsideWritesSince(db: Db, noted: {counter: number | null; counterSeq: number | null; otherWrites: number | null; counterOther: number | null}, seqNow: number): OutsideWrites {
  const now = fileChangeCounter(db)
  if (now === null || noted.counter === null) return 'unavailable'
  if (now === noted.counter) return 'none'
  // Writes to tables the record does not hold (an ignored queue) explain the counter too.
  if (noted.counterOther !== null && noted.otherWrites !== noted.counterOther) return 'unknown'
  return noted.counterSeq !== null && seqNow <= noted.counterSeq ? 'detected' : 'unknown'
}
