import {type Db, translateSqliteError} from './open-database.js'

/**
 * Runs `fn` inside a transaction, or inside the caller's if one is already open (so a scan
 * and the writes that depend on it can share one). Rolled back on any error.
 */
export async function inTransaction<T>(db: Db, mode: 'read' | 'write', fn: () => Promise<T>): Promise<T> {
  if (db.inTransaction) return fn()
  try {
    db.exec(mode === 'write' ? 'BEGIN IMMEDIATE' : 'BEGIN')
  } catch (error) {
    throw translateSqliteError(error, db.name)
  }
  try {
    const result = await fn()
    db.exec('COMMIT')
    return result
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK')
    throw translateSqliteError(error, db.name)
  }
}
