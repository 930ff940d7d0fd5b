import {TilesyncError} from '../../core/errors.js'
import type {Md5Cache} from '../../dataset/md5-cache.js'
import {restoreDataset} from '../../dataset/restore.js'
import type {DecodedRow} from '../../dataset/rows-file.js'
import {computeChangeSet} from '../../snapshot/change-set.js'
import {type Commit, encodeCommit} from '../../snapshot/model.js'
import {EMPTY_STATE, sameTables} from '../../snapshot/tree-state.js'
import type {Workspace} from '../../workspace/workspace.js'
import {HubSource, parentsFirst} from './hub-source.js'
import type {OxenClient} from './oxen-client.js'
import type {OxenSyncState} from './oxen-state.js'

export interface FetchContext {
  md5: Md5Cache
  partCache: Map<string, DecodedRow[]>
  files: number
  bytes: number
}

/**
 * Maps every hub commit reachable from `head` to a tilesync commit, rebuilding those not yet
 * known from their dataset. Commits tilesync made come back with the same ids (verified);
 * commits made with other tools become new tilesync commits with the oxen message and author,
 * tiles taken from generations.csv and the other columns from tilesync/ (deterministic, so
 * every machine gets the same ids). Returns how many tilesync commits were added (with
 * dryRun: how many hub commits would be read).
 */
export async function importHubHistory(ws: Workspace, client: OxenClient, state: OxenSyncState, head: string, ctx: FetchContext, dryRun: boolean): Promise<number> {
  if (head in state.commits) return 0
  const order = parentsFirst(head, await client.history(head)).filter((c) => !(c.id in state.commits))
  if (dryRun) return order.length
  let added = 0
  for (const oc of order) {
    const parentOxen = oc.parent_ids?.[0]
    const parent = parentOxen ? state.commits[parentOxen] || null : null
    const parentState = parent ? await ws.stateOf(parent) : null
    const src = new HubSource(client, oc.id)
    const restored = await restoreDataset(src, {
      reader: ws.reader, store: ws.repo.store, md5: ctx.md5, base: parentState, baseXY: ws.repo.config.xyColumns, partCache: ctx.partCache,
    })
    ctx.files += src.stats.files
    ctx.bytes += src.stats.bytes
    if (!restored) {
      state.commits[oc.id] = parent ?? ''
      continue
    }
    if (restored.mode === 'exact') {
      const {id, ...fields} = restored.commit!
      for (const p of fields.parents) {
        if (!(await ws.repo.store.has(p))) {
          throw new TilesyncError('BAD_DATASET', `${src.label} holds tilesync commit ${id.slice(0, 10)}, whose parent ${p.slice(0, 10)} is not on this hub branch`, {
            hint: 'fetch the branch it was pushed from first',
          })
        }
      }
      if (!(await ws.repo.store.has(id))) {
        await ws.repo.store.put(encodeCommit(fields), id)
        added++
      }
      state.commits[oc.id] = id
      continue
    }
    // Made with other tools: a new tilesync commit, unless it left the tile data as it was.
    if (parentState && sameTables(parentState, restored.state)) {
      state.commits[oc.id] = parent!
      continue
    }
    const stats = (await computeChangeSet(parentState ?? EMPTY_STATE, restored.state, ws.reader)).summary
    const at = Date.parse(oc.timestamp)
    const commit: Commit = {
      tree: restored.state.snapshotId, parents: parent ? [parent] : [],
      author: {name: oc.author || 'unknown', email: oc.email || ''},
      timestamp: Number.isFinite(at) ? at : 0, tzOffsetMinutes: 0, message: oc.message || '(no message)', stats,
    }
    state.commits[oc.id] = await ws.repo.store.put(encodeCommit(commit))
    added++
  }
  return added
}
