import * as fs from 'node:fs/promises'

import {applyToDatabase} from '../db/apply-snapshot.js'
import {ignoredInSnapshot} from '../snapshot/ignore-rules.js'
import {createDatabase} from '../db/open-database.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import {flushWhileWriting} from '../util/flush-while-writing.js'
import {createProgress} from '../util/progress.js'
import type {TreeState} from '../snapshot/tree-state.js'
import {markBaseline, type Workspace} from '../workspace/workspace.js'

/**
 * Writes `target` into a brand-new database file (a clone's) and makes it durable; returns
 * the rows written. The file must be a temp name that the caller renames into place only
 * when this returns, and removes when it throws: that is what makes it safe to write with
 * no journal and no syncs of SQLite's own. The file is flushed in the background while it is
 * built, so the final fdatasync has little left to do.
 */
export async function writeNewDatabase(file: string, target: TreeState, reader: TreeReader, ws: Workspace): Promise<number> {
  const db = createDatabase(file)
  db.pragma('journal_mode = OFF')
  db.pragma('synchronous = OFF')
  const flusher = flushWhileWriting(file)
  try {
    const progress = await createProgress('rows')
    progress.start([...target.tables.values()].reduce((s, t) => s + t.rowCount, 0), 'checkout')
    // What the commit left out of versioning (a work queue, a flag column) is created empty,
    // with its schema, so the app starts; the new repository keeps leaving it out.
    const ignored = ignoredInSnapshot(target.snapshot.schema, target.tables)
    const rules = ws.ignoreRules().union(ignored)
    if (!ignored.isEmpty && JSON.stringify(rules.entries()) !== JSON.stringify(ws.ignoreRules().entries())) {
      ws.repo.config.ignore = rules.entries()
      await ws.repo.writeConfig()
    }
    // Every table of a new database is created from its target tree, its rows streamed from
    // the tree as they are written; a list of every row as a change (what rawChanges from an
    // empty state gives) would only hold a city's rows in memory at once for nothing.
    const applied = await applyToDatabase(db, {changes: new Map(), targetSchema: target.snapshot.schema, targetTables: target.tables, targetHeader: target.snapshot.header, ignore: rules}, reader, () => progress.increment())
    progress.stop()
    if (await ws.ensureTracking(db)) markBaseline(db, target.snapshotId, 0)
    // The user's later writes get SQLite's usual rollback journal.
    db.pragma('journal_mode = DELETE')
    db.close()
    await flusher.stop()
    const h = await fs.open(file, 'r+')
    try {
      await h.datasync()
    } finally {
      await h.close()
    }
    return applied.rowsWritten
  } catch (error) {
    if (db.open) db.close()
    await flusher.stop()
    throw error
  }
}
