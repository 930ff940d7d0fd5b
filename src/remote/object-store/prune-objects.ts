import pLimit from 'p-limit'

import {isTilesyncError, TilesyncError} from '../../core/errors.js'
import {type BlobRef, decodeCommit, decodeNode, decodeSnapshot, decodeTable, type Row} from '../../snapshot/model.js'
import type {PruneOptions, PruneResult} from '../capabilities.js'
import type {RemoteStore} from './remote-store.js'
import {readRemoteShallow, updateRemoteShallow} from './shallow-remote.js'
import {transferConcurrency} from './transfer.js'

/**
 * Keeps the last `keepLast` commits of every branch of a remote (following first parents)
 * and removes every object those commits do not reach. The commits older than that are cut
 * off: the oldest kept commits become shallow roots, listed under the remote key `shallow`
 * before anything is removed, so fetch and clone end history there instead of failing. An
 * object is removed only when its last modification is older than the grace period, so the
 * objects of a push running at the same time are never removed.
 */
export async function pruneObjects(remote: RemoteStore, options: PruneOptions): Promise<PruneResult> {
  const keepLast = options.keepLast
  const graceMs = options.graceMs
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
  const doomed: Array<{id: string; size: number}> = []
  for await (const o of remote.listObjects()) {
    if (live.has(o.id)) continue
    if (o.lastModified >= cutoff) {
      result.young.objects++
      result.young.bytes += o.size
      continue
    }
    doomed.push({id: o.id, size: o.size})
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
    if (!options.dryRun) await remote.deleteObject(d.id)
    result.removed.objects++
    result.removed.bytes += d.size
  })))
  return result
}

async function exists(remote: RemoteStore, id: string): Promise<boolean> {
  return (await remote.getObjectBytes(id)) !== null
}
