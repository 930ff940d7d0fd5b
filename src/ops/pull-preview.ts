import {isTilesyncError} from '../core/errors.js'
import {isAncestor, mergeBase} from '../history/graph.js'
import type {Transport} from '../remote/transport.js'
import {type ChangeSet, computeChangeSet} from '../snapshot/change-set.js'
import {TreeReader} from '../snapshot/tree-reader.js'
import type {TreeState} from '../snapshot/tree-state.js'
import type {Workspace} from '../workspace/workspace.js'

/** What a pull would do to the database, worked out without storing anything. */
export interface PullPreview {
  /** The commit the change is measured from: HEAD for a fast-forward, else the common ancestor. */
  from: string | null
  to: string
  /** True when the pull would fast-forward: `changes` is then exactly what the database gets. */
  fastForward: boolean
  changes: ChangeSet
}

/**
 * For `pull --dry-run`: the tiles the pull would change. Commits and trees the local store
 * lacks are read from the remote (verified by hash, kept in memory only, no blob is read),
 * so the preview is there before anything is fetched. null when the remote cannot be read
 * object by object and the commit is not here yet.
 */
export async function previewPull(ws: Workspace, remote: Transport, head: string | null, theirs: string): Promise<PullPreview | null> {
  const store = ws.repo.store
  const objects = remote.objects
  if (!(await store.has(theirs)) && !objects) return null
  const reader = new TreeReader({
    get: async (id) => ((await store.has(id)) || !objects ? store.get(id) : objects.read(id)),
    has: (id) => store.has(id),
  })
  const stateOf = async (id: string | null): Promise<TreeState> => {
    if (!id) return ws.stateOf(null)
    const {commit, snapshot, tables, tableIds} = await reader.tablesOf(id)
    return {snapshotId: commit.tree, snapshot, tables, tableIds, ignore: ws.ignoreRules()}
  }
  try {
    const fastForward = head === null || (await isAncestor(reader, head, theirs))
    const from = fastForward ? head : await mergeBase(reader, head, theirs)
    const changes = await computeChangeSet(await stateOf(from), await stateOf(theirs), reader)
    return {from, to: theirs, fastForward, changes}
  } catch (error) {
    // History a prune cut off on the remote: no preview, the counts of the fetch still stand.
    if (isTilesyncError(error, 'OBJECT_MISSING')) return null
    throw error
  }
}
