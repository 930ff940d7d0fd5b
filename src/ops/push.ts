
import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {isAncestor} from '../history/graph.js'
import type {TransportTuning} from '../remote/registry.js'
import type {Transport} from '../remote/transport.js'
import {createProgress, type Progress} from '../util/progress.js'
import type {Workspace} from '../workspace/workspace.js'
import {defaultRemoteName, openRemote} from './remotes.js'
import {recordSync} from './sync-log.js'

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
  /** Figures only some kinds of remote have (files removed, the commits made there). */
  [detail: string]: unknown
}

export interface PushOptions {
  remote?: string
  branch?: string
  force?: boolean
  dryRun?: boolean
  /** Remove files of tiles that no longer exist, on remotes that publish files (others ignore it). */
  prune?: boolean
  /** Knobs for the remote's transport (tests, tuning). */
  transport?: TransportTuning
  /** Where to report objects sent (default: a bar on a terminal); the HTTP API keeps it for its status. */
  progress?: Progress
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
 * Sends a branch to a remote: only what the remote lacks, the branch moved last with
 * compare-and-swap so two people pushing at once cannot overwrite each other.
 */
export async function push(ws: Workspace, options: PushOptions = {}): Promise<PushResult> {
  const name = defaultRemoteName(ws.repo, options.remote)
  const branch = await currentBranch(ws, options.branch)
  const remote = await openRemote(ws.repo, name, options.transport)
  try {
    return await recordSync(ws.repo, {op: 'push', remote: name, branch}, () => pushTo(ws, remote, name, branch, options))
  } finally {
    await remote.close()
  }
}

/**
 * A branch new to the remote (or forced over commits unknown here) still need not resend
 * what the remote's other branches hold: their tips that this repository has.
 */
async function tipsKnownHere(ws: Workspace, remote: Transport): Promise<string[]> {
  const out: string[] = []
  // A remote that does not exist yet (push creates it) has no branches.
  const branches = await remote.listBranches(ws).catch((error: unknown) => {
    if (isTilesyncError(error, 'REMOTE_UNKNOWN')) return []
    throw error
  })
  for (const b of branches) if (b.commit && (await ws.repo.store.has(b.commit))) out.push(b.commit)
  return out
}

export async function pushTo(ws: Workspace, remote: Transport, name: string, branch: string, options: {force?: boolean; dryRun?: boolean; prune?: boolean; progress?: Progress}): Promise<PushResult> {
  const local = await ws.repo.refs.read(`refs/heads/${branch}`)
  if (!local) throw new TilesyncError('REF_MISSING', `no local branch "${branch}" to push`, {hint: 'commit first, or name an existing branch'})
  const tracking = `refs/remotes/${name}/${branch}`
  const there = await remote.readBranch(branch, ws)
  const dryRun = Boolean(options.dryRun)
  const base: PushResult = {remote: name, branch, from: there?.commit ?? null, to: local, upToDate: false, dryRun, commits: 0, objects: 0, bytes: 0, skipped: 0}
  if (there?.commit === local) {
    if (!dryRun) await ws.repo.refs.update(tracking, local, `push: up to date`)
    return {...base, upToDate: true}
  }
  const known = there?.commit ? await ws.repo.store.has(there.commit) : false
  if (there && !options.force && (!known || !(await isAncestor(ws.reader, there.commit!, local)))) throw remoteMoved(name, branch)
  const outcome = await remote.push(ws, {
    branch, tip: local, have: known ? [there!.commit!] : await tipsKnownHere(ws, remote), expected: there, force: options.force, dryRun, prune: options.prune,
    progress: dryRun ? undefined : options.progress ?? await createProgress('objects'),
    moved: (commit, note) => ws.repo.refs.update(tracking, commit, `push: ${note ?? `${base.from?.slice(0, 10) ?? 'new'} -> ${commit.slice(0, 10)}`}`),
  })
  if (outcome.status === 'moved') throw remoteMoved(name, branch)
  const {commits, objects, bytes, skipped, details} = outcome
  return {...base, ...details, commits, objects, bytes, skipped}
}
