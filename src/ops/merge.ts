import {existsSync} from 'node:fs'
import * as fs from 'node:fs/promises'

import {TilesyncError} from '../core/errors.js'
import {applyToDatabase} from '../db/apply-snapshot.js'
import type {Db} from '../db/open-database.js'
import {isAncestor, mergeBase} from '../history/graph.js'
import {writeCommit} from '../history/write-commit.js'
import {writeFileAtomic} from '../util/write-file-atomic.js'
import {defaultAuthor} from '../util/author.js'
import {createProgress} from '../util/progress.js'
import {computeChangeSet, rawChanges, sameContent} from '../snapshot/change-set.js'
import {type Conflict, type Side, threeWayMerge} from './three-way-merge.js'
import {maxSeq, readTrackingState} from '../db/change-tracking.js'
import {inTransaction} from '../db/transactions.js'
import {markBaseline, type Workspace} from '../workspace/workspace.js'
import {sameTables, type TreeState} from '../snapshot/tree-state.js'

export interface MergeResult {
  outcome: 'up-to-date' | 'fast-forward' | 'merged' | 'conflicts' | 'aborted'
  head: string | null
  theirs: string
  conflicts: Conflict[]
  rowsWritten: number
}

interface MergeState {
  ours: string
  theirs: string
  base: string | null
  label: string
  resolutions: Record<string, Side>
}

function dirtyError(): TilesyncError {
  return new TilesyncError('DIRTY', 'the database has uncommitted changes', {hint: 'commit them first (`tilesync commit -m ...`); a merge only writes a clean database'})
}

/**
 * The database's state when it differs from HEAD, or null when it equals HEAD. Merges never
 * mix with uncommitted work; the one exception is a database that already equals the merge's
 * result, which is what a merge killed after its database write and before HEAD moved leaves.
 */
async function uncommitted(ws: Workspace, db: Db, head: TreeState): Promise<TreeState | null> {
  const working = await ws.scan(db, {store: false})
  return (await sameContent(head, working.state, working.reader)) ? null : working.state
}

/** Writes the difference between two states into the database (one transaction). */
export async function writeState(ws: Workspace, db: Db, from: TreeState, to: TreeState): Promise<number> {
  const changes = await rawChanges(from, to, ws.reader)
  const progress = await createProgress('rows')
  progress.start([...changes.values()].reduce((s, c) => s + c.changes.length, 0), 'write')
  try {
    return await inTransaction(db, 'write', async () => {
      const r = await applyToDatabase(db, {changes, targetSchema: to.snapshot.schema, targetTables: to.tables, ignore: ws.ignoreRules()}, ws.reader, () => progress.increment())
      markBaseline(db, to.snapshotId, readTrackingState(db).installed ? maxSeq(db) : 0)
      return r.rowsWritten + r.rowsDeleted
    })
  } finally {
    progress.stop()
  }
}

/**
 * Merges `theirs` into HEAD: nothing to do, a fast-forward, a merge commit when the changes
 * combine, or a recorded merge state listing the conflicts with the database untouched.
 */
export async function mergeCommit(ws: Workspace, theirs: string, label: string, options: {lockHeld?: boolean} = {}): Promise<MergeResult> {
  const run = async (): Promise<MergeResult> => {
    if (existsSync(ws.repo.layout.mergeState)) {
      throw new TilesyncError('MERGE_IN_PROGRESS', 'a merge is already in progress', {hint: 'resolve it with `tilesync merge --ours|--theirs` or run `tilesync merge --abort`'})
    }
    const {id: ours, state: oursState} = await ws.headState()
    if (ours && await isAncestor(ws.reader, theirs, ours)) return {outcome: 'up-to-date', head: ours, theirs, conflicts: [], rowsWritten: 0}
    const db = ws.openDb(false)
    try {
      const working = await uncommitted(ws, db, oursState)
      const theirsState = await ws.stateOf(theirs)
      if (!ours || await isAncestor(ws.reader, ours, theirs)) {
        if (working && !sameTables(theirsState, working)) throw dirtyError()
        // The database is written first and HEAD moves after, so a crash in between leaves
        // the database at `theirs`: then only HEAD has to move.
        const rows = working ? 0 : await writeState(ws, db, oursState, theirsState)
        await ws.repo.refs.updateHead(theirs, `merge ${label}: fast-forward`, ours)
        return {outcome: 'fast-forward', head: theirs, theirs, conflicts: [], rowsWritten: rows}
      }
      const base = await mergeBase(ws.reader, ours, theirs)
      const state: MergeState = {ours, theirs, base, label, resolutions: {}}
      return await finishOrRecord(ws, db, state, oursState, undefined, working)
    } finally {
      db.close()
    }
  }
  return options.lockHeld ? run() : ws.repo.withLock('merge', run)
}

/** `working`: the database's state when it differs from ours (then it must equal the result). */
async function finishOrRecord(ws: Workspace, db: Db, state: MergeState, oursState: TreeState, fallback?: Side, working?: TreeState | null): Promise<MergeResult> {
  const outcome = await threeWayMerge(ws.reader, ws.repo.store, await ws.stateOf(state.base), oursState, await ws.stateOf(state.theirs),
    (c) => state.resolutions[c.id] ?? fallback)
  if (working && (outcome.conflicts.length > 0 || !sameTables(outcome.state, working))) throw dirtyError()
  if (outcome.conflicts.length > 0) {
    await writeFileAtomic(ws.repo.layout.tmp, ws.repo.layout.mergeState, Buffer.from(JSON.stringify(state, null, 2)), true)
    return {outcome: 'conflicts', head: state.ours, theirs: state.theirs, conflicts: outcome.conflicts, rowsWritten: 0}
  }
  const changes = await computeChangeSet(oursState, outcome.state, ws.reader)
  const id = await writeCommit(ws.repo, {
    tree: outcome.state.snapshotId, parents: [state.ours, state.theirs], author: await defaultAuthor(),
    message: `Merge ${state.label}`, stats: changes.summary,
  })
  const rows = working ? 0 : await writeState(ws, db, oursState, outcome.state)
  await ws.repo.refs.updateHead(id, `merge ${state.label}`, state.ours)
  await fs.rm(ws.repo.layout.mergeState, {force: true})
  return {outcome: 'merged', head: id, theirs: state.theirs, conflicts: [], rowsWritten: rows}
}

async function readState(ws: Workspace): Promise<MergeState> {
  try {
    return JSON.parse(await fs.readFile(ws.repo.layout.mergeState, 'utf8')) as MergeState
  } catch {
    throw new TilesyncError('NO_MERGE', 'no merge is in progress', {hint: 'start one with `tilesync pull` or `tilesync merge REV`'})
  }
}

/** The conflicts of the merge in progress. */
export async function mergeStatus(ws: Workspace): Promise<MergeResult> {
  const state = await readState(ws)
  const outcome = await threeWayMerge(ws.reader, ws.repo.store, await ws.stateOf(state.base), await ws.stateOf(state.ours), await ws.stateOf(state.theirs), (c) => state.resolutions[c.id])
  return {outcome: 'conflicts', head: state.ours, theirs: state.theirs, conflicts: outcome.conflicts, rowsWritten: 0}
}

/**
 * Resolves conflicts of the merge in progress: all of them, or those of the given tiles,
 * taking our or their side. When none remain, the merge commit is made and written.
 */
export async function resolveMerge(ws: Workspace, side: Side, tiles?: Array<[number, number]>): Promise<MergeResult> {
  return ws.repo.withLock('merge', async () => {
    const state = await readState(ws)
    const {id: head, state: oursState} = await ws.headState()
    if (head !== state.ours) {
      throw new TilesyncError('MERGE_IN_PROGRESS', 'HEAD moved since the merge started', {hint: 'run `tilesync merge --abort` and merge again'})
    }
    const current = await mergeStatus(ws)
    const wanted = tiles ? new Set(tiles.map(([x, y]) => `${x},${y}`)) : null
    const picked = current.conflicts.filter((c) => !wanted || (c.x !== undefined && wanted.has(`${c.x},${c.y}`)))
    if (wanted && picked.length === 0) {
      throw new TilesyncError('BAD_ARGUMENT', `no conflict at ${[...wanted].join(' ')}`, {hint: '`tilesync merge --status` lists the conflicting tiles'})
    }
    for (const c of picked) state.resolutions[c.id] = side
    const db = ws.openDb(false)
    try {
      return await finishOrRecord(ws, db, state, oursState, undefined, await uncommitted(ws, db, oursState))
    } finally {
      db.close()
    }
  })
}

export async function abortMerge(ws: Workspace): Promise<MergeResult> {
  const state = await readState(ws)
  await fs.rm(ws.repo.layout.mergeState, {force: true})
  return {outcome: 'aborted', head: state.ours, theirs: state.theirs, conflicts: [], rowsWritten: 0}
}
