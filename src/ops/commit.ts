import {existsSync} from 'node:fs'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {writeCommit} from '../history/write-commit.js'
import type {Author} from '../snapshot/model.js'
import {defaultAuthor} from '../util/author.js'
import {createProgress} from '../util/progress.js'
import {computeChangeSet, isEmpty} from '../snapshot/change-set.js'
import type {SchemaChange} from '../snapshot/versioned-schema.js'
import {type Db, translateSqliteError} from '../db/open-database.js'
import {markBaseline, rowCountOf, Workspace} from '../workspace/workspace.js'
import {sameTables, type TreeState} from '../snapshot/tree-state.js'

export interface CommitResult {
  committed: boolean
  id: string | null
  parent: string | null
  branch: string | null
  message: string
  summary: {tilesAdded: number; tilesModified: number; tilesDeleted: number; rowsChanged: number}
  /** Schema changes the commit records ("column dark_mode added"). */
  schema: SchemaChange[]
  /** The tile table and its image layers, to say which new column is a layer. */
  tileTable: string | null
  layers: string[]
  bytesRead: number
  /** How the database was read: from the change record, or in full (and why); `notes`: what else to know (a table read under a lock). */
  scan: {incremental: boolean; reason: string; notes: string[]}
}

/** Snapshots the working database as a new commit on the current branch. */
export async function commit(ws: Workspace, options: {message: string; author?: Author; rescan?: boolean}): Promise<CommitResult> {
  if (!options.message.trim()) {
    throw new TilesyncError('BAD_ARGUMENT', 'the commit message is empty', {hint: 'pass -m "what changed"'})
  }
  // git (asked for the author) runs while the database is scanned.
  const author = options.author ? Promise.resolve(options.author) : defaultAuthor()
  // Awaited only once the scan is done: should the commit fail first (a held lock, a merge in
  // progress), a failed author lookup must not surface as an unhandled rejection instead.
  author.catch(() => {})
  return ws.repo.withLock('commit', async () => {
    if (existsSync(ws.repo.layout.mergeState)) {
      throw new TilesyncError('MERGE_IN_PROGRESS', 'a merge is in progress', {
        hint: 'finish it with `tilesync merge --ours|--theirs` or abandon it with `tilesync merge --abort`',
      })
    }
    const head = await ws.repo.refs.readHead()
    const {id: parent, state: parentState} = await ws.headState()
    const db = ws.openDb(false)
    try {
      return await commitScanned(ws, db, {message: options.message, author, rescan: options.rescan}, head.kind === 'branch' ? head.branch : null, parent, parentState)
    } finally {
      db.close()
    }
  })
}

async function commitScanned(ws: Workspace, db: Db, options: {message: string; author: Promise<Author>; rescan?: boolean}, branch: string | null, parent: string | null, parentState: TreeState): Promise<CommitResult> {
  await ws.ensureTracking(db)
  const progress = await createProgress('rows')
  let scanned
  try {
    if (progress.enabled) progress.start(rowCountOf(db, ws.specs(db)), 'commit')
    scanned = await ws.scan(db, {store: true, progress, rescan: options.rescan})
  } finally {
    progress.stop()
  }
  const scan = {incremental: scanned.tracking.used, reason: scanned.tracking.reason, notes: scanned.notes}
  const nothing = (): CommitResult => {
    restartRecord(db, scanned.state.snapshotId, scanned.tracking.upTo, scanned.tracking.counter)
    return {committed: false, id: parent, parent, branch, message: options.message, summary: {tilesAdded: 0, tilesModified: 0, tilesDeleted: 0, rowsChanged: 0}, schema: [], tileTable: null, layers: [], bytesRead: scanned.bytes, scan}
  }
  if (parent && sameTables(parentState, scanned.state)) return nothing()
  const changes = await computeChangeSet(parentState, scanned.state, ws.reader)
  // The same versioned rows in another column layout (a column just left out of versioning,
  // or one added that holds only its default) is nothing to commit either.
  if (parent && isEmpty(changes)) return nothing()
  const id = await writeCommit(ws.repo, {
    tree: scanned.state.snapshotId,
    parents: parent ? [parent] : [],
    author: await options.author,
    message: options.message,
    stats: changes.summary,
  })
  await ws.repo.refs.updateHead(id, `commit: ${options.message.split('\n')[0]}`, parent)
  // The record of changed rows starts again from this snapshot.
  restartRecord(db, scanned.state.snapshotId, scanned.tracking.upTo, scanned.tracking.counter)
  return {committed: true, id, parent, branch, message: options.message, summary: changes.summary, schema: changes.schema, tileTable: changes.tileTable, layers: changes.layers, bytesRead: scanned.bytes, scan}
}

/**
 * Moves the change record's baseline to the committed snapshot. When another process holds
 * the database's write lock this is skipped: the commit is already made, and a record left
 * relative to the older baseline still gives the right working state (just a longer list).
 */
function restartRecord(db: Db, snapshotId: string, upTo: number, observed: number | null): void {
  try {
    markBaseline(db, snapshotId, upTo, observed)
  } catch (error) {
    if (!isTilesyncError(translateSqliteError(error, db.name), 'DB_LOCKED')) throw error
  }
}
