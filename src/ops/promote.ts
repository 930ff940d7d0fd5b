import pLimit from 'p-limit'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {isObjectId} from '../core/hash.js'
import {commitsNotIn, isAncestor} from '../history/graph.js'
import {type ObjectPlan, planCommits, planCount, planGroups} from '../remote/object-plan.js'
import {PushJournal} from '../remote/push-journal.js'
import {type RemoteStore, remoteKeys} from '../remote/remote-store.js'
import {forgetIfPruned, readRemoteShallow, updateRemoteShallow} from '../remote/shallow-remote.js'
import {transferConcurrency} from '../remote/transfer.js'
import {TreeReader} from '../snapshot/tree-reader.js'
import type {ObjectReader} from '../store/object-store.js'
import {createProgress} from '../util/progress.js'
import {openRemoteStore} from './remotes.js'
import {recordSync} from './sync-log.js'
import type {Workspace} from '../workspace/workspace.js'

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
  /** True when every copy was done by the storage service itself (S3 CopyObject), no bytes through this machine. */
  copiedServerSide: boolean
  upToDate: boolean
  dryRun: boolean
}

/**
 * Reads objects from a remote, each verified by hash (RemoteStore.getObject), remembering
 * their sizes. Lets the tree walks of planning run directly against a remote.
 */
class RemoteObjectReader implements ObjectReader {
  readonly sizes = new Map<string, number>()

  constructor(private readonly remote: RemoteStore) {}

  async get(id: string): Promise<Buffer> {
    const bytes = await this.remote.getObject(id)
    this.sizes.set(id, bytes.length)
    return bytes
  }

  async has(id: string): Promise<boolean> {
    return this.sizes.has(id)
  }
}

/**
 * Promotes a commit from one remote to another (staging -> production): copies the objects
 * the destination's branch history lacks, server-side when both remotes are buckets of the
 * same S3 account (no bytes through this machine), else by download, hash check and upload;
 * then moves the destination branch with compare-and-swap.
 *
 * What the destination lacks is derived from its branch's history (commits and trees read
 * from the source and verified by hash), never by asking for objects one by one. Before
 * anything is written, the commit is checked to be complete on the source: every commit and
 * tree to copy has been read and verified, and every tile blob to copy is found by listing.
 * The destination branch must be an ancestor of the promoted commit ("remote moved"
 * otherwise). Running it again copies nothing: the branch is then already there. An
 * interrupted promotion leaves the destination branch where it was and records what was
 * copied, so the next run copies only the rest.
 */
export async function promote(ws: Workspace, options: PromoteOptions): Promise<PromoteResult> {
  if (options.from === options.to) {
    throw new TilesyncError('BAD_ARGUMENT', `cannot promote from "${options.from}" to itself`, {hint: 'name two different remotes, e.g. `tilesync push production --from staging`'})
  }
  const from = await openRemoteStore(ws.repo, options.from)
  const to = await openRemoteStore(ws.repo, options.to)
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
    await from.backend.close?.()
    await to.backend.close?.()
  }
}

async function branchToPromote(ws: Workspace, from: RemoteStore, given?: string): Promise<string> {
  if (given) return given
  const head = await ws.repo.refs.readHead()
  if (head.kind === 'branch') return head.branch
  const meta = await from.readMeta()
  if (typeof meta?.defaultBranch === 'string') return meta.defaultBranch
  throw new TilesyncError('BAD_ARGUMENT', 'HEAD is detached: say which branch to promote', {hint: 'e.g. `tilesync push production --from staging main`'})
}

async function commitToPromote(ws: Workspace, from: RemoteStore, branch: string, given?: string): Promise<string> {
  if (given) return isObjectId(given) ? given : ws.resolve(given)
  const ref = await from.readBranch(branch)
  if (!ref) {
    throw new TilesyncError('REF_MISSING', `remote "${from.name}" has no branch "${branch}"`, {hint: `push it there first, or name the commit with --commit`})
  }
  return ref.id
}

export function promoteRefused(from: string, to: string, branch: string, previous: string, commit: string): TilesyncError {
  return new TilesyncError('REMOTE_MOVED', `remote moved: ${to}/${branch} (${previous.slice(0, 10)}) is not an ancestor of ${commit.slice(0, 10)} from ${from}; nothing was promoted`, {
    hint: `${to}/${branch} has commits the promoted commit does not contain: merge them into ${from}/${branch} first (pull both, merge, push to ${from}), then promote again`,
    data: {branch, previous, commit},
  })
}

async function promoteBetween(ws: Workspace, from: RemoteStore, to: RemoteStore, branch: string, options: PromoteOptions): Promise<PromoteResult> {
  const commit = await commitToPromote(ws, from, branch, options.commit)
  const target = await to.readBranch(branch)
  const base: PromoteResult = {
    from: from.name, to: to.name, branch, commit, previous: target?.id ?? null, commits: 0,
    objects: 0, bytes: 0, skipped: 0, copiedServerSide: false, upToDate: false, dryRun: Boolean(options.dryRun),
  }
  if (target?.id === commit) return {...base, upToDate: true}

  // Plan against the source: every commit and tree read here is verified by hash.
  const source = new RemoteObjectReader(from)
  // History ends at the shallow roots a prune left on the source; on the target, what lies
  // below its own shallow roots counts as not there.
  const fromShallow = await readRemoteShallow(from)
  const reader = new TreeReader(source, undefined, fromShallow)
  if (target && !(await isAncestor(reader, target.id, commit))) throw promoteRefused(from.name, to.name, branch, target.id, commit)
  const commits = await commitsNotIn(reader, commit, target ? [target.id] : [], target ? await readRemoteShallow(to) : undefined)
  const plan = await planCommits(reader, commits)
  const journal = await PushJournal.open(ws.repo.layout.remoteState(to.name))
  if (!options.dryRun) await forgetIfPruned(journal, to)
  const todo = planGroups(plan).map((group) => group.filter((id) => !journal.has(id)))
  const skipped = planCount(plan) - todo.reduce((n, g) => n + g.length, 0)
  const sizeOf = (id: string): number => plan.blobs.get(id) ?? source.sizes.get(id) ?? 0

  await assertBlobsPresent(from, commit, todo[0], plan)
  if (options.dryRun) {
    return {...base, commits: commits.length, objects: todo.reduce((n, g) => n + g.length, 0), bytes: todo.flat().reduce((s, id) => s + sizeOf(id), 0), skipped}
  }

  const stats = {objects: 0, bytes: 0, serverSide: 0}
  const limit = pLimit(transferConcurrency())
  const progress = await createProgress('objects')
  progress.start(planCount(plan), 'promote')
  progress.increment(skipped)
  try {
    for (const group of todo) {
      await Promise.all(group.map((id) => limit(async () => {
        const key = remoteKeys.object(id)
        if (await to.backend.copyFrom?.(from.backend, key)) {
          stats.serverSide++
        } else {
          await to.putObject(id, await from.getObject(id))
        }
        journal.record(id)
        stats.objects++
        stats.bytes += sizeOf(id)
        progress.increment()
      }))).catch(async (error) => {
        await journal.flush()
        if (isTilesyncError(error) && error.code !== 'TRANSFER_FAILED') throw error
        const reason = (error as {oneLine?: string}).oneLine ?? (error as Error).message
        throw new TilesyncError('TRANSFER_FAILED', `promote stopped after ${stats.objects} of ${planCount(plan) - skipped} objects: ${reason}`, {
          hint: `${to.name}/${branch} was not changed; run the same command again to copy only what is still missing`,
          cause: error,
        })
      })
      await journal.flush()
    }
  } finally {
    progress.stop()
  }

  if (!(await to.readMeta())) {
    const meta = await from.readMeta()
    if (meta) await to.writeMeta({...meta, defaultBranch: branch})
  }
  const cut = commits.filter((c) => fromShallow.has(c))
  if (cut.length) await updateRemoteShallow(to, (current) => new Set([...current, ...cut]))
  if (!(await to.casBranch(branch, target?.etag ?? null, commit))) {
    // Someone moved the branch meanwhile; the same promotion finishing first is no conflict.
    const now = await to.readBranch(branch)
    if (now?.id !== commit) throw promoteRefused(from.name, to.name, branch, now?.id ?? '(deleted)', commit)
  }
  await journal.clear()
  return {...base, commits: commits.length, objects: stats.objects, bytes: stats.bytes, skipped, copiedServerSide: stats.objects > 0 && stats.serverSide === stats.objects}
}

/**
 * Checks, before anything is written, that every tile blob to copy is on the source with the
 * size its tree records. Listing (a thousand keys per request) replaces a request per blob:
 * only the fan-out prefixes the blobs fall in when they are few, else the whole object space.
 */
async function assertBlobsPresent(from: RemoteStore, commit: string, ids: string[], plan: ObjectPlan): Promise<void> {
  if (ids.length === 0) return
  const wanted = new Map(ids.map((id) => [remoteKeys.object(id), id]))
  const prefixes = [...new Set(ids.map((id) => remoteKeys.object(id).slice(0, remoteKeys.objectsPrefix.length + 3)))]
  const scan = prefixes.length <= 32 ? prefixes : [remoteKeys.objectsPrefix]
  const found = new Map<string, number>()
  const limit = pLimit(8)
  await Promise.all(scan.map((prefix) => limit(async () => {
    for await (const k of from.backend.list(prefix)) if (wanted.has(k.key)) found.set(wanted.get(k.key)!, k.size)
  })))
  const missing = ids.filter((id) => !found.has(id))
  if (missing.length > 0) {
    throw new TilesyncError('OBJECT_MISSING', `commit ${commit.slice(0, 10)} is incomplete on remote "${from.name}": ${missing.length} object(s) missing, e.g. ${missing[0]}; nothing was promoted`, {
      hint: `push the commit to ${from.name} again from a clone that has it, then promote again`,
      data: {commit, missing: missing.slice(0, 20)},
    })
  }
  const wrong = ids.filter((id) => found.get(id) !== plan.blobs.get(id))
  if (wrong.length > 0) {
    throw new TilesyncError('OBJECT_CORRUPT', `commit ${commit.slice(0, 10)} has ${wrong.length} damaged object(s) on remote "${from.name}" (size differs from the tree), e.g. ${wrong[0]}; nothing was promoted`, {
      hint: `repair ${from.name} by pushing from a clone that has the commit, then promote again`,
      data: {commit, damaged: wrong.slice(0, 20)},
    })
  }
}
