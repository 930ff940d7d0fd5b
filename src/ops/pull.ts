import {TilesyncError} from '../core/errors.js'
import {isAncestor} from '../history/graph.js'
import type {TransportTuning} from '../remote/registry.js'
import type {Transport} from '../remote/transport.js'
import {createProgress} from '../util/progress.js'
import type {Workspace} from '../workspace/workspace.js'
import {fetchFrom, type FetchResult} from './fetch.js'
import {mergeCommit, type MergeResult} from './merge.js'
import {previewPull, type PullPreview} from './pull-preview.js'
import {defaultRemoteName, openRemote} from './remotes.js'
import {recordSync} from './sync-log.js'

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
  /** With --dry-run: the tiles that would change (their side's changes when it would merge). */
  preview?: PullPreview
}

/** fetch + merge of the remote branch into the current branch. */
export async function pull(ws: Workspace, options: {remote?: string; branch?: string; dryRun?: boolean; transport?: TransportTuning; commit?: string} = {}): Promise<PullResult> {
  const name = defaultRemoteName(ws.repo, options.remote)
  const head = await ws.repo.refs.readHead()
  const branch = options.branch ?? (head.kind === 'branch' ? head.branch : undefined)
  if (!branch) throw new TilesyncError('BAD_ARGUMENT', 'HEAD is detached: say which branch to pull', {hint: 'e.g. `tilesync pull origin main`'})
  const remote = await openRemote(ws.repo, name, options.transport)
  try {
    const commit = options.commit
    if (commit) {
      if (!remote.fetchesCommits) {
        throw new TilesyncError('REMOTE_UNSUPPORTED', `pulling a pinned commit (a release) is not supported from ${remote.kind} remotes`, {hint: 'pull the release from the bucket or directory it was published to'})
      }
      return await recordSync(ws.repo, {op: 'pull', remote: name, branch}, () => pullCommit(ws, remote, name, branch, commit, Boolean(options.dryRun)))
    }
    return await recordSync(ws.repo, {op: 'pull', remote: name, branch}, async () => {
      const before = await ws.repo.refs.headCommit()
      const fetched = await fetchFrom(ws, remote, name, {branch, dryRun: options.dryRun})
      const theirs = fetched.branches[0]?.to
      const result: PullResult = {remote: name, branch, fetch: fetched, merge: null, from: before, to: before, objects: fetched.objects, bytes: fetched.bytes, dryRun: Boolean(options.dryRun)}
      if (options.dryRun) {
        const preview = theirs ? await previewPull(ws, remote, before, theirs) : null
        if (preview) {
          result.preview = preview
          if (preview.fastForward) result.wouldChange = preview.changes.summary
        }
        return result
      }
      if (!theirs) throw new TilesyncError('REMOTE_EMPTY', `${remote.location} has no tile data on branch ${branch}`, {hint: 'push to it first'})
      result.merge = await mergeCommit(ws, theirs, `${name}/${branch}`)
      result.to = result.merge.head
      return result
    })
  } finally {
    await remote.close()
  }
}

/**
 * Brings the current branch to exactly `commit` (a release): downloads its history (each
 * object verified), then fast-forwards. Refuses when HEAD has commits the release lacks,
 * since the database would then not be the release.
 */
async function pullCommit(ws: Workspace, remote: Transport, name: string, branch: string, commit: string, dryRun: boolean): Promise<PullResult> {
  const before = await ws.repo.refs.headCommit()
  const [got] = await remote.fetch(ws, [commit], {progress: dryRun ? undefined : await createProgress('objects'), dryRun})
  const fetched: FetchResult = {remote: name, branches: [{branch, from: null, to: commit, commits: got.commits, objects: got.objects, bytes: got.bytes}], objects: got.objects, bytes: got.bytes, dryRun}
  const result: PullResult = {remote: name, branch, fetch: fetched, merge: null, from: before, to: before, objects: got.objects, bytes: got.bytes, dryRun}
  const local = await ws.repo.store.has(commit)
  if (before !== null && before !== commit && local && !(await isAncestor(ws.reader, before, commit))) {
    throw new TilesyncError('BAD_ARGUMENT', `HEAD (${before.slice(0, 10)}) has commits that ${commit.slice(0, 10)} does not contain: pulling the release would not give exactly its data`, {
      hint: `\`tilesync checkout ${commit.slice(0, 10)}\` puts the database at the release (HEAD detached), or \`tilesync merge ${commit.slice(0, 10)}\` combines both`,
    })
  }
  if (dryRun) {
    const preview = await previewPull(ws, remote, before, commit)
    if (preview) {
      result.preview = preview
      if (preview.fastForward) result.wouldChange = preview.changes.summary
    }
    return result
  }
  result.merge = await mergeCommit(ws, commit, `${name} ${commit.slice(0, 10)}`)
  result.to = result.merge.head
  return result
}
