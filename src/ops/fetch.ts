import {TilesyncError} from '../core/errors.js'
import type {OxenTuning} from '../remote/oxen/oxen-sync.js'
import {downloadHistory, transferConcurrency} from '../remote/transfer.js'
import type {RemoteStore} from '../remote/remote-store.js'
import {createProgress} from '../util/progress.js'
import {defaultRemoteName, isOxenRemote, openRemoteStore} from './remotes.js'
import {recordSync} from './sync-log.js'
import type {Workspace} from '../workspace/workspace.js'

export interface FetchedBranch {
  branch: string
  from: string | null
  to: string
  commits: number
  objects: number
  bytes: number
}

export interface FetchResult {
  remote: string
  branches: FetchedBranch[]
  objects: number
  bytes: number
  dryRun: boolean
}

/** Downloads what a remote has that we lack and moves `refs/remotes/NAME/*`. The database is not touched. */
export async function fetchRemote(ws: Workspace, options: {remote?: string; branch?: string; dryRun?: boolean; oxen?: OxenTuning} = {}): Promise<FetchResult> {
  const name = defaultRemoteName(ws.repo, options.remote)
  if (isOxenRemote(ws.repo, name)) return (await import('../remote/oxen/oxen-sync.js')).fetchOxen(ws, name, options)
  const remote = await openRemoteStore(ws.repo, name)
  return recordSync(ws.repo, {op: 'fetch', remote: name, branch: options.branch}, () => fetchFrom(ws, remote, name, options))
}

export async function fetchFrom(ws: Workspace, remote: RemoteStore, name: string, options: {branch?: string; dryRun?: boolean}): Promise<FetchResult> {
  let branches = await remote.listBranches()
  if (options.branch) {
    branches = branches.filter((b) => b.name === options.branch)
    if (branches.length === 0) {
      throw new TilesyncError('REF_MISSING', `remote "${name}" has no branch "${options.branch}"`, {hint: `\`tilesync remote show ${name}\` lists its branches`})
    }
  }
  const result: FetchResult = {remote: name, branches: [], objects: 0, bytes: 0, dryRun: Boolean(options.dryRun)}
  for (const b of branches) {
    const trackingRef = `refs/remotes/${name}/${b.name}`
    const before = await ws.repo.refs.read(trackingRef)
    const {stats, commits} = await downloadHistory(ws.repo.store, remote, b.id, {concurrency: transferConcurrency(), progress: await createProgress('objects'), dryRun: options.dryRun})
    if (!options.dryRun && before !== b.id) await ws.repo.refs.update(trackingRef, b.id, `fetch: ${before?.slice(0, 10) ?? 'new'} -> ${b.id.slice(0, 10)}`)
    result.branches.push({branch: b.name, from: before, to: b.id, commits: commits.length, objects: stats.objects, bytes: stats.bytes})
    result.objects += stats.objects
    result.bytes += stats.bytes
  }
  return result
}
