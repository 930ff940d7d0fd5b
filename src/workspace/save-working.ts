import {writeCommit} from '../history/write-commit.js'
import type {TreeState} from '../snapshot/tree-state.js'
import {defaultAuthor} from '../util/author.js'
import type {Workspace} from './workspace.js'

/** Records the working database as a commit (not on any branch) before it is overwritten. */
export async function saveWorking(ws: Workspace, working: TreeState, parent: string | null): Promise<string> {
  const id = await writeCommit(ws.repo, {
    tree: working.snapshotId,
    parents: parent ? [parent] : [],
    author: await defaultAuthor(),
    message: 'uncommitted changes saved by tilesync before they were overwritten',
    stats: {tilesAdded: 0, tilesModified: 0, tilesDeleted: 0, rowsChanged: 0},
  })
  await ws.repo.refs.update('refs/saved', id, 'saved uncommitted changes before checkout --force')
  return id
}
