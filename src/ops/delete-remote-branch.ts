import {TilesyncError} from '../core/errors.js'
import type {TransportTuning} from '../remote/registry.js'
import type {Workspace} from '../workspace/workspace.js'
import {defaultRemoteName, openRemote} from './remotes.js'
import {recordSync} from './sync-log.js'

export interface DeleteBranchResult {
  remote: string
  branch: string
  /** The commit the branch was at (the tracking ref's). */
  from: string
  to: null
  dryRun: boolean
  deleted: boolean
}

/**
 * `tilesync push REMOTE --delete BRANCH`: removes a branch on the remote by compare-and-swap,
 * only if it is still where `refs/remotes/REMOTE/BRANCH` says, i.e. nobody pushed to it since
 * the last fetch (as `git push --force-with-lease --delete`). Its commits stay where other
 * branches use them. The tracking ref goes too.
 */
export async function deleteRemoteBranch(ws: Workspace, options: {remote?: string; branch: string; dryRun?: boolean; transport?: TransportTuning}): Promise<DeleteBranchResult> {
  const name = defaultRemoteName(ws.repo, options.remote)
  const branch = options.branch
  const tracking = `refs/remotes/${name}/${branch}`
  const remote = await openRemote(ws.repo, name, options.transport)
  try {
    return await recordSync(ws.repo, {op: 'delete-branch', remote: name, branch}, async () => {
      if (!remote.deleteBranch) {
        throw new TilesyncError('REMOTE_UNSUPPORTED', `remote "${name}" (${remote.kind}) cannot delete branches`, {hint: 'delete it with the storage service\'s own tools'})
      }
      const seen = await ws.repo.refs.read(tracking)
      const there = await remote.readBranch(branch, ws)
      if (!there) {
        throw new TilesyncError('REF_MISSING', `remote "${name}" has no branch "${branch}"`, {hint: `\`tilesync fetch ${name}\` shows its branches`})
      }
      if (!seen) {
        throw new TilesyncError('REF_MISSING', `no ${tracking}: fetch ${name} first, so that what is deleted is what you have seen`, {hint: `run \`tilesync fetch ${name}\`, then push --delete again`})
      }
      if (there.commit !== seen) {
        throw new TilesyncError('REMOTE_MOVED', `remote moved: ${name}/${branch} is not where you last fetched it (${seen.slice(0, 10)}); nothing was deleted`, {
          hint: `run \`tilesync fetch ${name}\` and look at what was pushed, then push --delete again`,
        })
      }
      const base = {remote: name, branch, from: seen, to: null, dryRun: Boolean(options.dryRun)}
      if (options.dryRun) return {...base, deleted: false}
      if (!(await remote.deleteBranch(branch, there))) {
        throw new TilesyncError('REMOTE_MOVED', `remote moved: ${name}/${branch} moved while it was being deleted; nothing was deleted`, {hint: `run \`tilesync fetch ${name}\`, then push --delete again`})
      }
      await ws.repo.refs.update(tracking, null, `push --delete: ${seen.slice(0, 10)} -> deleted`)
      return {...base, deleted: true}
    })
  } finally {
    await remote.close()
  }
}
