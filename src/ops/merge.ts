import {existsSync, readFileSync} from 'node:fs'
import * as fs from 'node:fs/promises'

import {TilesyncError} from '../core/errors.js'
import {applyToDatabase} from '../db/apply-snapshot.js'
import {changesInRegion, partialTables} from '../workspace/outside-region.js'
import type {Db} from '../db/open-database.js'
import {isAncestor, mergeBase} from '../history/graph.js'
import {writeCommit} from '../history/write-commit.js'
import {writeFileAtomic} from '../util/write-file-atomic.js'
import {defaultAuthor} from '../util/author.js'
import {createProgress} from '../util/progress.js'
import {computeChangeSet, rawChanges, sameContent} from '../snapshot/change-set.js'
import {TreeReader} from '../snapshot/tree-reader.js'
import {OverlayStore} from '../store/overlay-store.js'
import {type Conflict, type MergeOutcome, type Side, threeWayMerge} from './three-way-merge.js'
import {maxSeq, readTrackingState} from '../db/change-tracking.js'
import {inTransaction} from '../db/transactions.js'
import {firstUnexpectedRow} from '../db/verify-rows.js'
import {markBaseline, type Workspace} from '../workspace/workspace.js'
import {sameTables, type TreeState} from '../snapshot/tree-state.js'

export interface MergeResult {
  outcome: 'up-to-date' | 'fast-forward' | 'merged' | 'conflicts' | 'aborted'
  /** What made this three-way merge: `tilesync merge`/`pull`, or `tilesync revert`. */
  kind: 'merge' | 'revert'
  /** For a revert: the commit whose changes are being undone. */
  reverted?: string
  head: string | null
  theirs: string
  conflicts: Conflict[]
  rowsWritten: number
}

export interface MergeState {
  ours: string
  theirs: string
  base: string | null
  label: string
  resolutions: Record<string, Side>
  /**
   * Set for a revert: `base` is the reverted commit and `theirs` its parent, so the same
   * three-way merge takes back exactly its changes; the result has HEAD as its only parent.
   */
  revert?: {commit: string; message: string}
}

const kindOf = (state: MergeState): MergeResult['kind'] => (state.revert ? 'revert' : 'merge')
const describe = (state: MergeState): Pick<MergeResult, 'kind' | 'reverted'> => (state.revert ? {kind: 'revert', reverted: state.revert.commit} : {kind: 'merge'})

export function dirtyError(kind: MergeResult['kind'] = 'merge'): TilesyncError {
  return new TilesyncError('DIRTY', 'the database has uncommitted changes', {hint: `commit them first (\`tilesync commit -m ...\`); a ${kind} only writes a clean database`})
}

/** What is in progress: a merge, a revert, or nothing. Both keep their state in the same file. */
export function inProgress(ws: Workspace): MergeResult['kind'] | null {
  if (!existsSync(ws.repo.layout.mergeState)) return null
  try {
    return kindOf(JSON.parse(readFileSync(ws.repo.layout.mergeState, 'utf8')) as MergeState)
  } catch {
    // An unreadable state is still a merge in progress.
    return 'merge'
  }
}

/** One merge or revert at a time. */
export function refuseIfInProgress(ws: Workspace): void {
  const kind = inProgress(ws)
  if (!kind) return
  throw new TilesyncError('MERGE_IN_PROGRESS', `a ${kind} is already in progress`, {hint: `resolve it with \`tilesync ${kind} --ours|--theirs\` or run \`tilesync ${kind} --abort\``})
}

/**
 * The database's state when it differs from HEAD, or null when it equals HEAD. Merges never
 * mix with uncommitted work; the one exception is a database that already equals the merge's
 * result, which is what a merge killed after its database write and before HEAD moved leaves.
 */
export async function uncommitted(ws: Workspace, db: Db, head: TreeState): Promise<TreeState | null> {
  const working = await ws.scan(db, {store: false})
  scannedUpTo.set(db, working.tracking.upTo)
  return (await sameContent(head, working.state, working.reader)) ? null : working.state
}

/**
 * The change record's sequence number at the moment `uncommitted` read the database: a
 * pipeline writing meanwhile leaves records after it, which must outlive the baseline's move
 * (those rows are not what the written state says).
 */
const scannedUpTo = new WeakMap<Db, number>()

/** Writes the difference between two states into the database (one transaction). */
export async function writeState(ws: Workspace, db: Db, from: TreeState, to: TreeState): Promise<number> {
  const changes = changesInRegion(await rawChanges(from, to, ws.reader), to.snapshot.tileTable, ws.repo.partial)
  const progress = await createProgress('rows')
  progress.start([...changes.values()].reduce((s, c) => s + c.changes.length, 0), 'write')
  try {
    return await inTransaction(db, 'write', async () => {
      // The database was found equal to `from` through the change record; the rows about to
      // be overwritten must bear that out (a blob I/O write fires no trigger).
      const unexpected = await firstUnexpectedRow(db, changes, ws.reader.objects)
      if (unexpected) {
        throw new TilesyncError('DIRTY', `the database has a change the change record did not see (${unexpected})`, {
          hint: 'commit it first with `tilesync commit --rescan -m ...`, then run the command again',
        })
      }
      const r = await applyToDatabase(db, {changes, targetSchema: to.snapshot.schema, targetTables: to.tables, targetHeader: to.snapshot.header, ignore: ws.ignoreRules(), partialTables: partialTables(to.snapshot.tileTable, ws.repo.partial)}, ws.reader, () => progress.increment())
      markBaseline(db, to.snapshotId, readTrackingState(db).installed ? scannedUpTo.get(db) ?? maxSeq(db) : 0)
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
    refuseIfInProgress(ws)
    const {id: ours, state: oursState} = await ws.headState()
    if (ours && await isAncestor(ws.reader, theirs, ours)) return {outcome: 'up-to-date', kind: 'merge', head: ours, theirs, conflicts: [], rowsWritten: 0}
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
        return {outcome: 'fast-forward', kind: 'merge', head: theirs, theirs, conflicts: [], rowsWritten: rows}
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

/**
 * A three-way merge into HEAD whose other side and base the caller chose (a revert passes
 * the reverted commit's parent and the commit itself): it commits, or records the
 * conflicts for `--status/--ours/--theirs/--abort`, exactly as a merge does.
 */
export async function startThreeWay(ws: Workspace, input: {theirs: string; base: string | null; label: string; revert?: MergeState['revert']}): Promise<MergeResult> {
  return ws.repo.withLock(input.revert ? 'revert' : 'merge', async () => {
    refuseIfInProgress(ws)
    const {id: ours, state: oursState} = await ws.headState()
    if (!ours) throw new TilesyncError('NO_COMMITS', 'nothing is committed yet', {hint: 'make a first commit with `tilesync commit -m ...`'})
    const db = ws.openDb(false)
    try {
      const state: MergeState = {ours, theirs: input.theirs, base: input.base, label: input.label, resolutions: {}, ...(input.revert ? {revert: input.revert} : {})}
      return await finishOrRecord(ws, db, state, oursState, undefined, await uncommitted(ws, db, oursState))
    } finally {
      db.close()
    }
  })
}

/** Uncommitted changes are only tolerated when the database already holds the result (a write whose HEAD move was lost). */
function refuseOverUncommitted(outcome: MergeOutcome, working: TreeState | null | undefined, kind: MergeResult['kind']): void {
  if (working && (outcome.conflicts.length > 0 || !sameTables(outcome.state, working))) throw dirtyError(kind)
}

/**
 * What startThreeWay would do, written nowhere: the merged tree goes to an in-memory overlay
 * (read it with the returned reader), the database is opened read-only, no state file, no
 * commit, HEAD untouched. Refuses exactly where the real run refuses.
 */
export async function previewThreeWay(ws: Workspace, input: {theirs: string; base: string | null; revert?: MergeState['revert']}): Promise<{head: string; headState: TreeState; outcome: MergeOutcome; reader: TreeReader}> {
  refuseIfInProgress(ws)
  const {id: head, state: headState} = await ws.headState()
  if (!head) throw new TilesyncError('NO_COMMITS', 'nothing is committed yet', {hint: 'make a first commit with `tilesync commit -m ...`'})
  const overlay = new OverlayStore(ws.repo.store)
  const db = ws.openDb(true)
  try {
    const working = await uncommitted(ws, db, headState)
    const outcome = await threeWayMerge(ws.reader, overlay, await ws.stateOf(input.base), headState, await ws.stateOf(input.theirs), () => undefined)
    refuseOverUncommitted(outcome, working, input.revert ? 'revert' : 'merge')
    return {head, headState, outcome, reader: new TreeReader(overlay)}
  } finally {
    db.close()
  }
}

/** `working`: the database's state when it differs from ours (then it must equal the result). */
async function finishOrRecord(ws: Workspace, db: Db, state: MergeState, oursState: TreeState, fallback?: Side, working?: TreeState | null): Promise<MergeResult> {
  // The merged tree is built in memory and stored only when it is committed.
  const overlay = new OverlayStore(ws.repo.store)
  const outcome = await threeWayMerge(ws.reader, overlay, await ws.stateOf(state.base), oursState, await ws.stateOf(state.theirs),
    (c) => state.resolutions[c.id] ?? fallback)
  const kind = kindOf(state)
  refuseOverUncommitted(outcome, working, kind)
  if (outcome.conflicts.length > 0) {
    await writeFileAtomic(ws.repo.layout.tmp, ws.repo.layout.mergeState, Buffer.from(JSON.stringify(state, null, 2)), true)
    return {outcome: 'conflicts', ...describe(state), head: state.ours, theirs: state.theirs, conflicts: outcome.conflicts, rowsWritten: 0}
  }
  // A revert whose changes HEAD no longer holds (or whose conflicts were all kept as ours)
  // has nothing to commit: an empty revert commit would only clutter the history.
  if (state.revert && sameTables(outcome.state, oursState)) {
    await fs.rm(ws.repo.layout.mergeState, {force: true})
    return {outcome: 'up-to-date', ...describe(state), head: state.ours, theirs: state.theirs, conflicts: [], rowsWritten: 0}
  }
  await overlay.copyTo(ws.repo.store)
  const changes = await computeChangeSet(oursState, outcome.state, ws.reader)
  const id = await writeCommit(ws.repo, {
    tree: outcome.state.snapshotId, parents: state.revert ? [state.ours] : [state.ours, state.theirs], author: await defaultAuthor(),
    message: state.revert?.message ?? `Merge ${state.label}`, stats: changes.summary,
  })
  const rows = working ? 0 : await writeState(ws, db, oursState, outcome.state)
  await ws.repo.refs.updateHead(id, `${kind} ${state.label}`, state.ours)
  await fs.rm(ws.repo.layout.mergeState, {force: true})
  return {outcome: 'merged', ...describe(state), head: id, theirs: state.theirs, conflicts: [], rowsWritten: rows}
}

async function readState(ws: Workspace): Promise<MergeState> {
  try {
    return JSON.parse(await fs.readFile(ws.repo.layout.mergeState, 'utf8')) as MergeState
  } catch {
    throw new TilesyncError('NO_MERGE', 'no merge or revert is in progress', {hint: 'start one with `tilesync pull`, `tilesync merge REV` or `tilesync revert REV`'})
  }
}

/** The conflicts of the merge in progress. */
export async function mergeStatus(ws: Workspace): Promise<MergeResult> {
  const state = await readState(ws)
  // Read-only: the merged tree is only needed for its conflicts, so it stays in memory.
  const outcome = await threeWayMerge(ws.reader, new OverlayStore(ws.repo.store), await ws.stateOf(state.base), await ws.stateOf(state.ours), await ws.stateOf(state.theirs), (c) => state.resolutions[c.id])
  return {outcome: 'conflicts', ...describe(state), head: state.ours, theirs: state.theirs, conflicts: outcome.conflicts, rowsWritten: 0}
}

/**
 * Resolves conflicts of the merge in progress: all of them, or those of the given tiles,
 * taking our or their side. When none remain, the merge commit is made and written.
 */
export async function resolveMerge(ws: Workspace, side: Side, tiles?: Array<[number, number]>): Promise<MergeResult> {
  return ws.repo.withLock('merge', async () => {
    const state = await readState(ws)
    const kind = kindOf(state)
    const {id: head, state: oursState} = await ws.headState()
    if (head !== state.ours) {
      throw new TilesyncError('MERGE_IN_PROGRESS', `HEAD moved since the ${kind} started`, {hint: `run \`tilesync ${kind} --abort\` and ${kind} again`})
    }
    const current = await mergeStatus(ws)
    const wanted = tiles ? new Set(tiles.map(([x, y]) => `${x},${y}`)) : null
    const picked = current.conflicts.filter((c) => !wanted || (c.x !== undefined && wanted.has(`${c.x},${c.y}`)))
    if (wanted && picked.length === 0) {
      throw new TilesyncError('BAD_ARGUMENT', `no conflict at ${[...wanted].join(' ')}`, {hint: `\`tilesync ${kind} --status\` lists the conflicting tiles`})
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
  return {outcome: 'aborted', ...describe(state), head: state.ours, theirs: state.theirs, conflicts: [], rowsWritten: 0}
}
