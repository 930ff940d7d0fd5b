import {TilesyncError} from '../core/errors.js'
import type {TransportTuning} from '../remote/registry.js'
import type {Transport} from '../remote/transport.js'
import {createProgress} from '../util/progress.js'
import type {Workspace} from '../workspace/workspace.js'
import {fetchRegion} from './partial-clone.js'
import {defaultRemoteName, openRemote} from './remotes.js'
import {recordSync} from './sync-log.js'

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
export async function fetchRemote(ws: Workspace, options: {remote?: string; branch?: string; dryRun?: boolean; transport?: TransportTuning} = {}): Promise<FetchResult> {
  const name = defaultRemoteName(ws.repo, options.remote)
  const remote = await openRemote(ws.repo, name, options.transport)
  try {
    // The log names what was fetched (or, with --dry-run, would be): the branch and where its
    // tracking ref goes, or the names of several.
    return await recordSync(ws.repo, {op: 'fetch', remote: name, branch: options.branch}, () => fetchFrom(ws, remote, name, options), (r) => {
      const one = r.branches.length === 1 ? r.branches[0] : undefined
      return {branch: r.branches.map((b) => b.branch).join(',') || undefined, from: one?.from ?? null, to: one?.to ?? null}
    })
  } finally {
    await remote.close()
  }
}

export async function fetchFrom(ws: Workspace, remote: Transport, name: string, options: {branch?: string; dryRun?: boolean}): Promise<FetchResult> {
  let branches = await remote.listBranches(ws)
  if (options.branch) {
    branches = branches.filter((b) => b.name === options.branch)
    if (branches.length === 0) {
      throw new TilesyncError('REF_MISSING', `remote "${name}" has no branch "${options.branch}"`, {hint: `\`tilesync remote show ${name}\` lists its branches`})
    }
  }
  const dryRun = Boolean(options.dryRun)
  const result: FetchResult = {remote: name, branches: [], objects: 0, bytes: 0, dryRun}
  for (const b of branches) {
    const trackingRef = `refs/remotes/${name}/${b.name}`
    const before = await ws.repo.refs.read(trackingRef)
    // A partial clone fetches from its origin as it cloned: the tip's images inside its region only.
    const filter = ws.repo.partial
    const [got] = filter?.remote === name && remote.objects && b.commit && !dryRun
      ? [{commit: b.commit, ...(await fetchRegion(ws, remote.objects, b.commit, filter.bbox))}]
      : await remote.fetch(ws, [b], {dryRun, progress: await createProgress('objects')})
    result.objects += got.objects
    result.bytes += got.bytes
    if (dryRun) {
      result.branches.push({branch: b.name, from: before, to: got.commit ?? before ?? '', commits: got.commits, objects: got.objects, bytes: got.bytes})
      continue
    }
    // A branch that holds no tile data yet (a new dataset's first commit) has nothing to track.
    if (!got.commit) continue
    if (before !== got.commit) {
      await ws.repo.refs.update(trackingRef, got.commit, `fetch: ${before?.slice(0, 10) ?? 'new'} -> ${got.commit.slice(0, 10)}${got.note ? ` (${got.note})` : ''}`)
    }
    result.branches.push({branch: b.name, from: before, to: got.commit, commits: got.commits, objects: got.objects, bytes: got.bytes})
  }
  return result
}
