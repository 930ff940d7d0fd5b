import {TilesyncError} from '../core/errors.js'
import {isObjectId} from '../core/hash.js'
import type {Transport} from '../remote/transport.js'
import {createProgress} from '../util/progress.js'
import type {Workspace} from '../workspace/workspace.js'
import {openRemote} from './remotes.js'
import {recordSync} from './sync-log.js'

export interface PromoteOptions {
  /** Remote to copy from (e.g. staging). */
  from: string
  /** Remote to copy to (e.g. production). */
  to: string
  /** Branch moved on `to`, and read on `from` when no commit is given. Default: the current branch. */
  branch?: string
  /** Promote this commit (full id, or a local revision) instead of the tip of `from`'s branch. */
  commit?: string
  dryRun?: boolean
  /**
   * Move `to`'s branch even when it is not an ancestor of the commit (a release rollback
   * puts an older commit live). Still compare-and-swap: the branch moves only from where it
   * was read (or from `expectedPrevious`, when given), never over a concurrent change.
   */
  force?: boolean
  /** With force: the commit `to`'s branch must be at; REMOTE_MOVED otherwise. */
  expectedPrevious?: string
}

export interface PromoteResult {
  from: string
  to: string
  branch: string
  /** The commit promoted (where `to`'s branch is afterwards). */
  commit: string
  /** Where `to`'s branch was before (null: it did not exist). */
  previous: string | null
  /** Commits `to` did not have. */
  commits: number
  /** Objects copied (with dryRun: that would be copied). */
  objects: number
  bytes: number
  /** Objects already copied by an earlier, interrupted run, not copied again. */
  skipped: number
  /** True when every copy was done by the storage service itself, no bytes through this machine. */
  copiedServerSide: boolean
  upToDate: boolean
  dryRun: boolean
}

/**
 * Promotes a commit from one remote to another (staging -> production) through the
 * destination's copyFrom capability: the objects the destination's branch history lacks are
 * copied, server-side when both are buckets of one account, then the branch moves with
 * compare-and-swap. The commit is checked to be complete on the source before anything is
 * written, and the destination branch must be an ancestor of it ("remote moved" otherwise).
 * Running it again copies nothing; an interrupted promotion leaves the destination branch
 * where it was, and the next run copies only the rest.
 */
export async function promote(ws: Workspace, options: PromoteOptions): Promise<PromoteResult> {
  if (options.from === options.to) {
    throw new TilesyncError('BAD_ARGUMENT', `cannot promote from "${options.from}" to itself`, {hint: 'name two different remotes, e.g. `tilesync push production --from staging`'})
  }
  const from = await openRemote(ws.repo, options.from)
  const to = await openRemote(ws.repo, options.to)
  try {
    const branch = await branchToPromote(ws, from, options.branch)
    let result: PromoteResult | undefined
    await recordSync(ws.repo, {op: 'promote', remote: options.to, branch}, async () => {
      result = await promoteBetween(ws, from, to, branch, options)
      // The sync log records commits: where the destination branch was and where it went.
      return {from: result.previous, to: result.commit, objects: result.objects, bytes: result.bytes, dryRun: result.dryRun}
    })
    return result!
  } finally {
    await from.close()
    await to.close()
  }
}

async function branchToPromote(ws: Workspace, from: Transport, given?: string): Promise<string> {
  if (given) return given
  const head = await ws.repo.refs.readHead()
  if (head.kind === 'branch') return head.branch
  const meta = await from.readMeta()
  if (meta?.defaultBranch) return meta.defaultBranch
  throw new TilesyncError('BAD_ARGUMENT', 'HEAD is detached: say which branch to promote', {hint: 'e.g. `tilesync push production --from staging main`'})
}

async function commitToPromote(ws: Workspace, from: Transport, fromName: string, branch: string, given?: string): Promise<string> {
  if (given) return isObjectId(given) ? given : ws.resolve(given)
  const ref = await from.readBranch(branch)
  if (!ref?.commit) {
    throw new TilesyncError('REF_MISSING', `remote "${fromName}" has no branch "${branch}"`, {hint: `push it there first, or name the commit with --commit`})
  }
  return ref.commit
}

export function promoteRefused(from: string, to: string, branch: string, previous: string, commit: string): TilesyncError {
  return new TilesyncError('REMOTE_MOVED', `remote moved: ${to}/${branch} (${previous.slice(0, 10)}) is not an ancestor of ${commit.slice(0, 10)} from ${from}; nothing was promoted`, {
    hint: `${to}/${branch} has commits the promoted commit does not contain: merge them into ${from}/${branch} first (pull both, merge, push to ${from}), then promote again`,
    data: {branch, previous, commit},
  })
}

async function promoteBetween(ws: Workspace, from: Transport, to: Transport, branch: string, options: PromoteOptions): Promise<PromoteResult> {
  const commit = await commitToPromote(ws, from, options.from, branch, options.commit)
  const target = await to.readBranch(branch)
  const base: PromoteResult = {
    from: options.from, to: options.to, branch, commit, previous: target?.commit ?? null, commits: 0,
    objects: 0, bytes: 0, skipped: 0, copiedServerSide: false, upToDate: false, dryRun: Boolean(options.dryRun),
  }
  if (target?.commit === commit) return {...base, upToDate: true}
  if (options.expectedPrevious !== undefined && target?.commit !== options.expectedPrevious) {
    throw new TilesyncError('REMOTE_MOVED', `remote moved: ${options.to}/${branch} is at ${target?.commit ? target.commit.slice(0, 10) : '(no branch)'}, not at ${options.expectedPrevious.slice(0, 10)}; nothing was promoted`, {
      hint: `read where ${options.to}/${branch} is now, then decide again`,
      data: {branch, previous: target?.commit ?? null, expected: options.expectedPrevious, commit},
    })
  }
  if (!to.copyFrom) {
    throw new TilesyncError('REMOTE_UNSUPPORTED', `cannot promote to "${options.to}" (${to.location}): ${to.kind} remotes cannot take a commit from another remote`, {hint: 'push to it from a clone instead'})
  }
  const outcome = await to.copyFrom(ws, from, {
    branch, tip: commit, have: target?.commit ? [target.commit] : [], expected: target, dryRun: options.dryRun, verb: 'promote', force: options.force,
    progress: options.dryRun ? undefined : await createProgress('objects'),
  })
  if (outcome.status === 'moved') throw promoteRefused(options.from, options.to, branch, outcome.tip ?? '(deleted)', commit)
  return {...base, commits: outcome.commits, objects: outcome.objects, bytes: outcome.bytes, skipped: outcome.skipped, copiedServerSide: Boolean(outcome.serverSide)}
}
