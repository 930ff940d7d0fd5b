import {TilesyncError} from '../core/errors.js'
import {writeCommit} from '../history/write-commit.js'
import {defaultAuthor} from '../util/author.js'
import {type ChangeSet, computeChangeSet} from '../snapshot/change-set.js'
import {
  abortMerge, dirtyError, inProgress, type MergeResult, mergeStatus, previewThreeWay, refuseIfInProgress, resolveMerge, startThreeWay,
  uncommitted, writeState,
} from './merge.js'
import type {Side} from './three-way-merge.js'
import {sameTables} from '../snapshot/tree-state.js'
import type {Workspace} from '../workspace/workspace.js'

/**
 * `undo`: a new commit that takes back one commit's changes, per tile and per column, and
 * keeps everything changed since. `to`: a new commit whose content equals the revision.
 * Either way the history only grows, so the result pushes without --force.
 */
export type RevertMode = 'undo' | 'to'

export interface RevertOptions {
  revision: string
  mode?: RevertMode
  /** Report what the revert would change, writing nothing: not the database, the store, refs or a merge state. */
  dryRun?: boolean
}

export interface RevertResult {
  outcome: 'committed' | 'nothing-to-revert' | 'conflicts' | 'aborted' | 'dry-run'
  mode: RevertMode
  /** The commit reverted (undo) or returned to (to); null when only the state file said (abort of an unreadable state). */
  revision: string | null
  /** HEAD after the command (the new commit when one was made). */
  head: string | null
  /** What the revert commit changed against the old HEAD, or would change (dry run). */
  changes: ChangeSet | null
  conflicts: MergeResult['conflicts']
  rowsWritten: number
  dryRun: boolean
}

const subject = (message: string): string => message.split('\n')[0]

/** Starts a revert: undoes REV's changes against HEAD, or (mode `to`) returns to REV's content. */
export async function revert(ws: Workspace, options: RevertOptions): Promise<RevertResult> {
  const mode = options.mode ?? 'undo'
  const id = await ws.resolve(options.revision)
  return mode === 'to' ? revertTo(ws, id, options) : undo(ws, id, options)
}

async function undo(ws: Workspace, id: string, options: RevertOptions): Promise<RevertResult> {
  const commit = await ws.reader.commit(id)
  if (commit.parents.length === 0) {
    throw new TilesyncError('BAD_ARGUMENT', `${options.revision} (${id.slice(0, 10)}) is the first commit${ws.repo.shallow.has(id) ? ' this clone has' : ''}: undoing it would remove every table`, {
      hint: `to go back to an earlier state use \`tilesync revert REV --to\`; to empty the database, delete its rows and commit`,
    })
  }
  // A merge commit is undone against its first parent: what the merge brought into the branch.
  const parent = commit.parents[0]
  const revertInfo = {commit: id, message: `Revert "${subject(commit.message)}"\n\nThis reverts commit ${id}.`}
  if (options.dryRun) {
    const preview = await previewThreeWay(ws, {theirs: parent, base: id, revert: revertInfo})
    const changes = await computeChangeSet(preview.headState, preview.outcome.state, preview.reader)
    return {
      outcome: 'dry-run', mode: 'undo', revision: id, head: preview.head, changes,
      conflicts: preview.outcome.conflicts, rowsWritten: 0, dryRun: true,
    }
  }
  const before = await ws.repo.refs.headCommit()
  const r = await startThreeWay(ws, {theirs: parent, base: id, label: `${options.revision} (${id.slice(0, 10)})`, revert: revertInfo})
  return fromMerge(ws, r, before)
}

async function revertTo(ws: Workspace, id: string, options: RevertOptions): Promise<RevertResult> {
  const target = await ws.stateOf(id)
  const run = async (): Promise<RevertResult> => {
    refuseIfInProgress(ws)
    const {id: head, state: headState} = await ws.headState()
    if (!head) throw new TilesyncError('NO_COMMITS', 'nothing is committed yet', {hint: 'make a first commit with `tilesync commit -m ...`'})
    const base: Omit<RevertResult, 'outcome' | 'changes'> = {mode: 'to', revision: id, head, conflicts: [], rowsWritten: 0, dryRun: Boolean(options.dryRun)}
    const db = ws.openDb(Boolean(options.dryRun))
    try {
      const working = await uncommitted(ws, db, headState)
      // As with merge: uncommitted changes block the revert unless the database already
      // holds its result (a revert whose HEAD move a crash cut short).
      if (working && !sameTables(working, target)) throw dirtyError('revert')
      if (sameTables(headState, target)) return {...base, outcome: 'nothing-to-revert', changes: null}
      const changes = await computeChangeSet(headState, target, ws.reader)
      if (options.dryRun) return {...base, outcome: 'dry-run', changes}
      const reverted = await ws.reader.commit(id)
      const newHead = await writeCommit(ws.repo, {
        tree: target.snapshotId, parents: [head], author: await defaultAuthor(),
        message: `Revert to ${id.slice(0, 10)} ("${subject(reverted.message)}")\n\nThe content of commit ${id}.`,
        stats: changes.summary,
      })
      // Database first, HEAD after: a crash in between leaves the database at the result,
      // which the same command run again accepts and only moves HEAD.
      const rows = working ? 0 : await writeState(ws, db, headState, target)
      await ws.repo.refs.updateHead(newHead, `revert --to ${options.revision}`, head)
      return {...base, outcome: 'committed', head: newHead, changes, rowsWritten: rows}
    } finally {
      db.close()
    }
  }
  return options.dryRun ? run() : ws.repo.withLock('revert', run)
}

/**
 * `revert --status/--ours/--theirs/--abort` act on a revert only; a merge in progress is
 * pointed to `tilesync merge`, so a flag never finishes something the user did not start.
 */
function refuseMerge(ws: Workspace): void {
  if (inProgress(ws) === 'merge') {
    throw new TilesyncError('MERGE_IN_PROGRESS', 'a merge is in progress, not a revert', {hint: 'see `tilesync merge --status`; finish it with `tilesync merge --ours|--theirs` or `tilesync merge --abort`'})
  }
}

/** The conflicts of the revert in progress. */
export async function revertStatus(ws: Workspace): Promise<RevertResult> {
  refuseMerge(ws)
  return fromMerge(ws, await mergeStatus(ws), null)
}

/** Resolves conflicts of the revert in progress (all, or those of some tiles); commits when none remain. */
export async function resolveRevert(ws: Workspace, side: Side, tiles?: Array<[number, number]>): Promise<RevertResult> {
  refuseMerge(ws)
  const before = await ws.repo.refs.headCommit()
  return fromMerge(ws, await resolveMerge(ws, side, tiles), before)
}

/** Abandons the revert in progress; the database was never written. */
export async function abortRevert(ws: Workspace): Promise<RevertResult> {
  refuseMerge(ws)
  return fromMerge(ws, await abortMerge(ws), null)
}

async function fromMerge(ws: Workspace, r: MergeResult, before: string | null): Promise<RevertResult> {
  const outcome: RevertResult['outcome'] = r.outcome === 'merged' ? 'committed' : r.outcome === 'up-to-date' ? 'nothing-to-revert'
    : r.outcome === 'aborted' ? 'aborted' : 'conflicts'
  const changes = outcome === 'committed' && before && r.head
    ? await computeChangeSet(await ws.stateOf(before), await ws.stateOf(r.head), ws.reader)
    : null
  return {outcome, mode: 'undo', revision: r.reverted ?? null, head: r.head, changes, conflicts: r.conflicts, rowsWritten: r.rowsWritten, dryRun: false}
}
