import {type Db, translateSqliteError, waitingForLock} from './open-database.js'
import {clearWriteStart, noteWriteStart} from './outside-writes.js'

/**
 * Runs `fn` inside a transaction, or inside the caller's if one is already open (so a scan
 * and the writes that depend on it can share one). Rolled back on any error.
 */
export async function inTransaction<T>(db: Db, mode: 'read' | 'write', fn: () => Promise<T>): Promise<T> {
  if (db.inTransaction) return fn()
  try {
    // A write transaction takes the write lock at once, waiting (visibly) for another writer.
    if (mode === 'write') waitingForLock(db, () => db.exec('BEGIN IMMEDIATE'))
    else db.exec('BEGIN')
    // The write lock is held and nothing is written yet: the file's change counter is the
    // committed one (see outside-writes.ts).
    if (mode === 'write') noteWriteStart(db)
  } catch (error) {
    throw translateSqliteError(error, db.name)
  }
  try {
    const result = await fn()
    // In rollback-journal mode COMMIT waits for readers to finish; a COMMIT that got BUSY
    // leaves the transaction open, so it can simply be tried again.
    if (mode === 'write') waitingForLock(db, () => db.exec('COMMIT'))
    else db.exec('COMMIT')
    return result
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK')
    throw translateSqliteError(error, db.name)
  } finally {
    clearWriteStart(db)
  }
}
