
import {TilesyncError} from '../core/errors.js'
import {commitsNotIn, isAncestor} from '../history/graph.js'
import {planCommits, planCount, planGroups} from '../remote/object-plan.js'
import type {OxenTuning} from '../remote/oxen/oxen-sync.js'
import {PushJournal} from '../remote/push-journal.js'
import {forgetIfPruned, readRemoteShallow} from '../remote/shallow-remote.js'
import type {RemoteStore} from '../remote/remote-store.js'
import {transferConcurrency, uploadPlan} from '../remote/transfer.js'
import {createProgress} from '../util/progress.js'
import {defaultRemoteName, isOxenRemote, openRemoteStore} from './remotes.js'
import {recordSync} from './sync-log.js'
import type {Workspace} from '../workspace/workspace.js'

export interface PushResult {
  remote: string
  branch: string
  from: string | null
  to: string
  upToDate: boolean
  dryRun: boolean
  commits: number
  objects: number
  bytes: number
  skipped: number
}

export function remoteMoved(remote: string, branch: string): TilesyncError {
  return new TilesyncError('REMOTE_MOVED', `remote moved: ${remote}/${branch} has commits you do not have; pull first`, {
    hint: `run \`tilesync pull ${remote} ${branch}\`, then push again (or --force to overwrite, losing their commits from the branch)`,
  })
}

async function currentBranch(ws: Workspace, given?: string): Promise<string> {
  if (given) return given
  const head = await ws.repo.refs.readHead()
  if (head.kind === 'branch') return head.branch
  throw new TilesyncError('BAD_ARGUMENT', 'HEAD is detached: say which branch to push', {hint: 'e.g. `tilesync push origin main`'})
}

/**
 * Sends a branch to a remote: only objects the remote lacks (found from the remote ref's
 * history, no per-object queries), blobs first, the ref last with compare-and-swap so two
 * people pushing at once cannot overwrite each other.
 */
export async function push(ws: Workspace, options: {remote?: string; branch?: string; force?: boolean; dryRun?: boolean; prune?: boolean; oxen?: OxenTuning} = {}): Promise<PushResult> {
  const name = defaultRemoteName(ws.repo, options.remote)
  const branch = await currentBranch(ws, options.branch)
  // The oxen client and dataset code load only for an oxen remote: a tenth of a second of start-up.
  if (isOxenRemote(ws.repo, name)) return (await import('../remote/oxen/oxen-sync.js')).pushOxen(ws, name, branch, options)
  const remote = await openRemoteStore(ws.repo, name)
  return recordSync(ws.repo, {op: 'push', remote: name, branch}, () => pushTo(ws, remote, name, branch, options))
}

export async function pushTo(ws: Workspace, remote: RemoteStore, name: string, branch: string, options: {force?: boolean; dryRun?: boolean}): Promise<PushResult> {
  const local = await ws.repo.refs.read(`refs/heads/${branch}`)
  if (!local) throw new TilesyncError('REF_MISSING', `no local branch "${branch}" to push`, {hint: 'commit first, or name an existing branch'})
  const remoteRef = await remote.readBranch(branch)
  const base: PushResult = {remote: name, branch, from: remoteRef?.id ?? null, to: local, upToDate: false, dryRun: Boolean(options.dryRun), commits: 0, objects: 0, bytes: 0, skipped: 0}
  if (remoteRef?.id === local) {
    await ws.repo.refs.update(`refs/remotes/${name}/${branch}`, local, `push: up to date`)
    return {...base, upToDate: true}
  }
  const known = remoteRef && (await ws.repo.store.has(remoteRef.id))
  if (remoteRef && !options.force && (!known || !(await isAncestor(ws.reader, remoteRef.id, local)))) throw remoteMoved(name, branch)
  // A pruned remote lacks what lies below its shallow roots: that counts as not there.
  const commits = await commitsNotIn(ws.reader, local, known ? [remoteRef.id] : [], known ? await readRemoteShallow(remote) : undefined)
  const plan = await planCommits(ws.reader, commits)
  const journal = await PushJournal.open(ws.repo.layout.remoteState(name))
  if (!options.dryRun) await forgetIfPruned(journal, remote)
  if (options.dryRun) {
    // The counts the real push would report: objects not yet sent by an interrupted push, and their bytes.
    const pending = planGroups(plan).flat().filter((id) => !journal.has(id))
    let bytes = 0
    for (const id of pending) bytes += plan.blobs.get(id) ?? (await ws.repo.store.sizeOf(id))
    return {...base, commits: commits.length, objects: pending.length, bytes, skipped: planCount(plan) - pending.length}
  }
  const stats = await uploadPlan(ws.repo.store, remote, plan, journal, {concurrency: transferConcurrency(), progress: await createProgress('objects')})
  if (!(await remote.readMeta())) {
    const c = ws.repo.config
    await remote.writeMeta({format: 1, database: c.database, tileTable: c.tileTable, keyColumns: c.keyColumns, imageColumns: c.imageColumns, xyColumns: c.xyColumns, defaultBranch: branch})
  }
  const moved = await remote.casBranch(branch, remoteRef?.etag ?? null, local)
  if (!moved) throw remoteMoved(name, branch)
  await journal.clear()
  await ws.repo.refs.update(`refs/remotes/${name}/${branch}`, local, `push: ${remoteRef?.id.slice(0, 10) ?? 'new'} -> ${local.slice(0, 10)}`)
  return {...base, commits: commits.length, objects: stats.objects, bytes: stats.bytes, skipped: stats.skipped}
}
