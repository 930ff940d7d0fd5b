import pLimit from 'p-limit'

import {isTilesyncError, TilesyncError} from '../../core/errors.js'
import {decodeCommit} from '../../snapshot/model.js'
import type {DestroyOptions, RemoteInventory} from '../capabilities.js'
import type {RemoteStore} from './remote-store.js'
import {listStoredKeys, STORED_PARTS} from './stored-keys.js'
import {transferConcurrency} from './transfer.js'

/**
 * `remote destroy` on a key/bytes store: counts what tilesync stored (branches, the commits
 * they reach, objects, keys, bytes) and, unless a dry run, removes exactly those keys: the
 * branches first, each by compare-and-swap on the version the user saw, then metadata and
 * objects. Keys another tool wrote under the same prefix are never listed, so never removed.
 */
export async function destroyStore(store: RemoteStore, location: string, options: DestroyOptions): Promise<RemoteInventory> {
  const branches = await readBranches(store)
  const inventory: RemoteInventory = {
    location, what: '', branches: branches.map((b) => ({name: b.name, commit: b.id, version: b.etag})),
    commits: await countCommits(store, branches.flatMap((b) => (b.id ? [b.id] : []))), objects: 0, bytes: 0, keys: 0, dryRun: Boolean(options.dryRun),
  }
  const keys: string[] = []
  const parts = new Map<string, number>()
  // Objects are counted as objects, packed or loose, not as the keys that hold them.
  // A damaged pack index must not stop a destroy: then the pack files are counted as keys only.
  const packed = await store.packIndex().catch(() => null)
  inventory.objects = packed?.size ?? 0
  for await (const k of listStoredKeys(store.backend)) {
    keys.push(k.key)
    inventory.keys! += 1
    inventory.bytes! += k.size
    if (k.part === 'objects' && !packed?.lookup(k.key.slice('objects/'.length).replace('/', ''))) inventory.objects! += 1
    parts.set(k.part, (parts.get(k.part) ?? 0) + 1)
  }
  inventory.what = parts.size === 0 ? 'nothing tilesync wrote' : [...parts].map(([part, n]) => `${n} ${part}`).join(', ')
  if (options.expected) assertUnchanged(store.name, options.expected, inventory.branches)
  if (options.dryRun) return inventory

  // 1. Branches, each only if still at the version shown: a push that lands meanwhile stops it.
  for (const b of branches) {
    // A damaged ref has no version to compare: it goes with the other keys.
    if (b.id === null) continue
    if (!(await store.deleteBranch(b.name, b.etag))) {
      throw new TilesyncError('REMOTE_MOVED', `remote "${store.name}" changed while it was being destroyed: branch ${b.name} moved`, {
        hint: 'someone pushed; fetch, look at what is there now, and run `tilesync remote destroy` again',
      })
    }
  }
  const branchKeys = new Set(branches.flatMap((b) => (b.id === null ? [] : [`refs/heads/${b.name}`])))
  // 2. Everything else: in batches where the store takes them (S3, R2: 1,000 keys a request), else many deletes at once.
  const rest = keys.filter((k) => !branchKeys.has(k))
  const limit = pLimit(Math.max(8, transferConcurrency()))
  const backend = store.backend
  if (backend.deleteMany) {
    const batches: string[][] = []
    for (let i = 0; i < rest.length; i += 1000) batches.push(rest.slice(i, i + 1000))
    await Promise.all(batches.map((b) => limit(() => backend.deleteMany!(b))))
  } else {
    await Promise.all(rest.map((k) => limit(() => backend.delete(k))))
  }
  await store.backend.flush?.()
  await store.backend.removeEmptyDirectories?.(STORED_PARTS.map((p) => p.prefix))
  // A push through this same store later (a long-running `serve --api`) starts from nothing.
  store.forgetPackIndex()
  return inventory
}

/** Every branch; a damaged ref is listed with no commit, so a broken remote can still be destroyed. */
async function readBranches(store: RemoteStore): Promise<Array<{name: string; id: string | null; etag: string}>> {
  const out: Array<{name: string; id: string | null; etag: string}> = []
  for (const name of await store.branchNames()) {
    try {
      const b = await store.readBranch(name)
      if (b) out.push({name, ...b})
    } catch (error) {
      if (!isTilesyncError(error, 'REMOTE_PROTOCOL')) throw error
      out.push({name, id: null, etag: 'damaged'})
    }
  }
  return out
}

function assertUnchanged(name: string, expected: Array<{name: string; version: string}>, now: Array<{name: string; version: string}>): void {
  const key = (bs: Array<{name: string; version: string}>) => bs.map((b) => `${b.name}@${b.version}`).sort().join('\n')
  if (key(expected) !== key(now)) {
    throw new TilesyncError('REMOTE_MOVED', `remote "${name}" changed since it was shown (its branches moved); nothing was removed`, {
      hint: 'run `tilesync remote destroy` again to see what is there now',
    })
  }
}

/** Commits reachable from `tips`, read level by level in parallel; history ends where a prune cut it. */
async function countCommits(store: RemoteStore, tips: string[]): Promise<number> {
  const seen = new Set<string>()
  const limit = pLimit(transferConcurrency())
  let found = 0
  let frontier = [...new Set(tips)]
  while (frontier.length > 0) {
    for (const id of frontier) seen.add(id)
    const parents = await Promise.all(frontier.map((id) => limit(async () => {
      try {
        const commit = decodeCommit(await store.getObject(id))
        found++
        return commit.parents
      } catch (error) {
        // A commit a prune removed (or a damaged one) ends that line of history.
        if (isTilesyncError(error, 'OBJECT_MISSING') || isTilesyncError(error, 'OBJECT_CORRUPT')) return []
        throw error
      }
    })))
    frontier = [...new Set(parents.flat())].filter((p) => !seen.has(p))
  }
  return found
}
