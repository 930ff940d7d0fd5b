import {TilesyncError} from '../core/errors.js'
import {computeChangeSet} from './change-set.js'
import {fetchFrom, type FetchResult} from './fetch.js'
import {mergeCommit, type MergeResult} from './merge.js'
import {isOxenRemote, type OxenTuning, pullOxen} from '../remote/oxen/oxen-sync.js'
import {defaultRemoteName, openRemoteStore} from './remotes.js'
import {recordSync} from './sync-log.js'
import type {Workspace} from './workspace.js'

export interface PullResult {
  remote: string
  branch: string
  fetch: FetchResult
  merge: MergeResult | null
  from: string | null
  to: string | null
  objects: number
  bytes: number
  dryRun: boolean
  /** With --dry-run: what the merge would change, when it is a fast-forward. */
  wouldChange?: {tilesAdded: number; tilesModified: number; tilesDeleted: number; rowsChanged: number}
}

/** fetch + merge of the remote branch into the current branch. */
export async function pull(ws: Workspace, options: {remote?: string; branch?: string; dryRun?: boolean; oxen?: OxenTuning} = {}): Promise<PullResult> {
  const name = defaultRemoteName(ws.repo, options.remote)
  const head = await ws.repo.refs.readHead()
  const branch = options.branch ?? (head.kind === 'branch' ? head.branch : undefined)
  if (!branch) throw new TilesyncError('BAD_ARGUMENT', 'HEAD is detached: say which branch to pull', {hint: 'e.g. `tilesync pull origin main`'})
  if (isOxenRemote(ws.repo, name)) return pullOxen(ws, name, branch, options)
  const remote = await openRemoteStore(ws.repo, name)
  return recordSync(ws.repo, {op: 'pull', remote: name, branch}, async () => {
    const before = await ws.repo.refs.headCommit()
    const fetched = await fetchFrom(ws, remote, name, {branch, dryRun: options.dryRun})
    const theirs = fetched.branches[0].to
    const result: PullResult = {remote: name, branch, fetch: fetched, merge: null, from: before, to: before, objects: fetched.objects, bytes: fetched.bytes, dryRun: Boolean(options.dryRun)}
    if (options.dryRun) {
      if (await ws.repo.store.has(theirs)) {
        result.wouldChange = (await computeChangeSet(await ws.stateOf(before), await ws.stateOf(theirs), ws.reader)).summary
      }
      return result
    }
    result.merge = await mergeCommit(ws, theirs, `${name}/${branch}`)
    result.to = result.merge.head
    return result
  })
}
