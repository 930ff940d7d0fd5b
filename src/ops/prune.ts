import pLimit from 'p-limit'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {isObjectId} from '../core/hash.js'
import {remoteKeys, type RemoteStore} from '../remote/remote-store.js'
import {readRemoteShallow, updateRemoteShallow} from '../remote/shallow-remote.js'
import {transferConcurrency} from '../remote/transfer.js'
import {type BlobRef, decodeCommit, decodeNode, decodeSnapshot, decodeTable, type Row} from '../snapshot/model.js'
import {short} from './object-walk.js'
import {DEFAULT_GRACE_MS} from './gc.js'

export interface PruneResult {
  remote: string
  keepLast: number
  dryRun: boolean
  graceMs: number
  branches: Array<{branch: string; tip: string; kept: number; oldestKept: string}>
  /** Commits kept on the remote (the last N of every branch). */
  keptCommits: number
  /** Commits whose parents are cut off: the remote's `shallow` list after the prune. */
  shallow: string[]
  /** Objects reachable from the kept commits. */
  reachable: number
  /** Objects removed (or that would be, with --dry-run). */
  removed: {objects: number; bytes: number}
  /** Unreachable objects kept because they are younger than the grace period (a push in flight). */
  young: {objects: number; bytes: number}
  /** Stale temp keys (interrupted uploads, scratch keys) removed. */
  tmp: {objects: number; bytes: number}
}

/**
 * Keeps the last `keepLast` commits of every branch of a remote (following first parents)
 * and removes every object those commits do not reach. The commits older than that are cut
 * off: the oldest kept commits become shallow roots, listed under the remote key `shallow`
 * before anything is removed, so fetch and clone end history there instead of failing. An
 * object is removed only when its last modification is older than the grace period, so the
 * objects of a push running at the same time are never removed.
 */
export async function pruneRemote(remote: RemoteStore, options: {keepLast: number; dryRun?: boolean; graceMs?: number}): Promise<PruneResult> {
  const keepLast = options.keepLast
  if (!Number.isInteger(keepLast) || keepLast < 1) {
    throw new TilesyncError('BAD_ARGUMENT', `--keep-last must be a whole number of at least 1, got ${keepLast}`, {hint: 'e.g. --keep-last 10'})
  }
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS
  const started = Date.now()
  const cutoff = started - graceMs
  const read = async (id: string): Promise<Buffer> => remote.getObject(id)
  const limit = pLimit(transferConcurrency())

  // 1. The commits to keep: the last N along each branch's first parents.
  const branches = await remote.listBranches()
  if (branches.length === 0) throw new TilesyncError('REMOTE_EMPTY', `remote "${remote.name}" has no branches`, {hint: 'there is nothing to prune'})
  const oldShallow = await readRemoteShallow(remote)
  const kept = new Map<string, string[]>()
  const trees = new Map<string, string>()
  const result: PruneResult = {
    remote: remote.name, keepLast, dryRun: Boolean(options.dryRun), graceMs, branches: [], keptCommits: 0, shallow: [],
    reachable: 0, removed: {objects: 0, bytes: 0}, young: {objects: 0, bytes: 0}, tmp: {objects: 0, bytes: 0},
  }
  for (const b of branches) {
    let id: string | undefined = b.id
    let n = 0
    let oldest = b.id
    while (id && n < keepLast) {
      if (!kept.has(id)) {
        const commit = decodeCommit(await read(id))
        kept.set(id, commit.parents)
        trees.set(id, commit.tree)
      }
      oldest = id
      n++
      const parents: string[] = kept.get(id)!
      id = parents[0]
      // History already cut here by an earlier prune.
      if (id && oldShallow.has(oldest) && !(await exists(remote, id))) id = undefined
    }
    result.branches.push({branch: b.name, tip: b.id, kept: n, oldestKept: oldest})
  }
  result.keptCommits = kept.size
  const shallow = new Set<string>()
  for (const [id, parents] of kept) if (parents.some((p) => !kept.has(p))) shallow.add(id)
  result.shallow = [...shallow].sort()

  // 2. Everything the kept commits reach (structured objects are read and checked; blobs are not).
  const live = new Set<string>(kept.keys())
  const mark = async (id: string, kind: 'snapshot' | 'table' | 'node'): Promise<void> => {
    if (live.has(id)) return
    live.add(id)
    const bytes = await limit(() => read(id))
    if (kind === 'snapshot') {
      await Promise.all(decodeSnapshot(bytes).tables.map((t) => mark(t.id, 'table')))
    } else if (kind === 'table') {
      const root = decodeTable(bytes).root
      if (root) await mark(root, 'node')
    } else {
      const node = decodeNode(bytes)
      if (node.level > 0) {
        await Promise.all((node as {entries: Array<{id: string}>}).entries.map((e) => mark(e.id, 'node')))
      } else {
        for (const row of (node as {rows: Row[]}).rows) {
          for (let i = 0; i < row.types.length; i++) if (row.types[i] === 'b') live.add((row.values[i] as BlobRef).id)
        }
      }
    }
  }
  try {
    for (const tree of trees.values()) await mark(tree, 'snapshot')
  } catch (error) {
    if (isTilesyncError(error, 'OBJECT_MISSING') || isTilesyncError(error, 'OBJECT_CORRUPT')) {
      throw new TilesyncError(error.code, `prune stopped before removing anything: ${error.message}`, {
        hint: `the kept commits are not complete on "${remote.name}"; run \`tilesync fsck --remote ${remote.name}\` first`,
        cause: error,
      })
    }
    throw error
  }
  result.reachable = live.size

  // 3. Record the new shallow roots before anything goes, so readers stop there.
  if (!options.dryRun) {
    await updateRemoteShallow(remote, (current) => new Set([...[...current].filter((id) => kept.has(id)), ...shallow]), cutoff)
  }

  // 4. Remove what the kept commits do not reach, if it is old enough.
  const doomed: Array<{key: string; size: number}> = []
  for await (const k of remote.backend.list(remoteKeys.objectsPrefix)) {
    const id = k.key.slice(remoteKeys.objectsPrefix.length).replace('/', '')
    if (!isObjectId(id) || live.has(id)) continue
    if (k.lastModified >= cutoff) {
      result.young.objects++
      result.young.bytes += k.size
      continue
    }
    doomed.push({key: k.key, size: k.size})
  }
  for await (const k of remote.backend.list('tmp/')) {
    if (k.lastModified >= cutoff) continue
    result.tmp.objects++
    result.tmp.bytes += k.size
    if (!options.dryRun) await remote.backend.delete(k.key)
  }
  // Small objects (commits, tree nodes) before tile images: a reader that began before the
  // prune fails early rather than half-way through a download.
  doomed.sort((a, b) => a.size - b.size)
  await Promise.all(doomed.map((d) => limit(async () => {
    if (!options.dryRun) await remote.backend.delete(d.key)
    result.removed.objects++
    result.removed.bytes += d.size
  })))
  return result
}

async function exists(remote: RemoteStore, id: string): Promise<boolean> {
  return (await remote.backend.get(remoteKeys.object(id))) !== null
}

export function describePrune(r: PruneResult): string[] {
  const lines = r.branches.map((b) => `  ${b.branch}: kept ${b.kept} commit(s), ${short(b.tip)} back to ${short(b.oldestKept)}`)
  if (r.shallow.length) lines.push(`  history now starts at ${r.shallow.map(short).join(', ')} (recorded in the remote's shallow list)`)
  return lines
}
