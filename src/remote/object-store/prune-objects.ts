import pLimit from 'p-limit'

import {isTilesyncError, TilesyncError} from '../../core/errors.js'
import {type BlobRef, decodeCommit, decodeNode, decodeSnapshot, decodeTable, type Row} from '../../snapshot/model.js'
import type {PruneOptions, PruneResult} from '../capabilities.js'
import {PackBuilder, type PackKind} from './pack-builder.js'
import {packTargetBytes} from './pack-upload.js'
import {readObjects} from './pack-reads.js'
import {packKeys, type RemotePack} from './remote-pack-index.js'
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
 *
 * Packs are repacked as restic's prune does: a pack whose every object is unreachable goes;
 * one that holds some is rewritten with what it keeps (the kept objects read by ranged reads,
 * packed anew, the new pack's index landed) before the old pack goes, index first. A pack is
 * touched only when it is older than the grace period, so a pack a push is still uploading,
 * or one it has just landed and not yet named in a branch, stays whole.
 */
export async function pruneObjects(remote: RemoteStore, options: PruneOptions): Promise<PruneResult> {
  const keepLast = options.keepLast
  const graceMs = options.graceMs
  const started = Date.now()
  const cutoff = started - graceMs
  const limit = pLimit(transferConcurrency())
  // Commits and trees come from the tree packs, read once, not one request each.
  const index = await remote.packIndex()
  const treesRead = new Map<string, Buffer>()
  const treeIds = [...index.packs.values()].filter((p) => p.kind === 'tree').flatMap((p) => p.entries.map((e) => e.id))
  await readObjects(remote, index, treeIds, {onObject: (id, bytes) => void treesRead.set(id, bytes)})
  const read = async (id: string): Promise<Buffer> => treesRead.get(id) ?? remote.getObject(id)

  // 1. The commits to keep: the last N along each branch's first parents.
  const branches = await remote.listBranches()
  if (branches.length === 0) throw new TilesyncError('REMOTE_EMPTY', `remote "${remote.name}" has no branches`, {hint: 'there is nothing to prune'})
  const oldShallow = await readRemoteShallow(remote)
  const kept = new Map<string, string[]>()
  const trees = new Map<string, string>()
  const result: PruneResult = {
    remote: remote.name, keepLast, dryRun: Boolean(options.dryRun), graceMs, branches: [], keptCommits: 0, shallow: [],
    reachable: 0, removed: {objects: 0, bytes: 0}, young: {objects: 0, bytes: 0}, tmp: {objects: 0, bytes: 0},
    repacked: {packs: 0, objects: 0, bytes: 0},
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

  // 4. Remove what the kept commits do not reach, if it is old enough: loose objects by key,
  // packed ones by dropping or rewriting their packs.
  const doomed: Array<{id: string; size: number}> = []
  for await (const o of remote.listLoose()) {
    if (live.has(o.id) && !index.lookup(o.id)) continue
    // A loose copy of an object a pack holds goes with the unreachable ones (it is in the pack).
    if (live.has(o.id)) {
      if (o.lastModified < cutoff) doomed.push({id: o.id, size: 0})
      continue
    }
    if (o.lastModified >= cutoff) {
      result.young.objects++
      result.young.bytes += o.size
      continue
    }
    doomed.push({id: o.id, size: o.size})
  }
  const rewrite: Array<{pack: RemotePack; keep: string[]}> = []
  const drop: RemotePack[] = []
  for (const p of index.packs.values()) {
    // An object held by two packs is kept in the one the index reads it from.
    const keep = p.entries.filter((e) => live.has(e.id) && index.lookup(e.id)?.pack === p.name)
    const dead = p.entries.filter((e) => !live.has(e.id))
    if (keep.length === p.entries.length) continue
    if (p.lastModified >= cutoff) {
      result.young.objects += dead.length
      result.young.bytes += dead.reduce((n, e) => n + e.length, 0)
      continue
    }
    result.removed.objects += dead.length
    result.removed.bytes += dead.reduce((n, e) => n + e.length, 0)
    if (keep.length === 0) drop.push(p)
    else rewrite.push({pack: p, keep: keep.map((e) => e.id)})
  }
  for await (const k of remote.backend.list('tmp/')) {
    if (k.lastModified >= cutoff) continue
    result.tmp.objects++
    result.tmp.bytes += k.size
    if (!options.dryRun) await remote.backend.delete(k.key)
  }
  result.repacked = {packs: rewrite.length, objects: rewrite.reduce((n, r) => n + r.keep.length, 0), bytes: 0}
  if (!options.dryRun) {
    for (const kind of ['data', 'tree'] as PackKind[]) {
      const todo = rewrite.filter((r) => r.pack.kind === kind)
      if (todo.length) result.repacked.bytes += await repack(remote, kind, todo)
    }
  }
  // Small objects (commits, tree nodes) before tile images: a reader that began before the
  // prune fails early rather than half-way through a download.
  doomed.sort((a, b) => a.size - b.size)
  await Promise.all(doomed.map((d) => limit(async () => {
    if (!options.dryRun) await remote.deleteObject(d.id)
    if (d.size === 0 && live.has(d.id)) return
    result.removed.objects++
    result.removed.bytes += d.size
  })))
  // The old packs go once what they keep is in its new packs: index first, so no reader ever
  // finds an index whose pack is gone for good (it reads the indexes again and finds the new one).
  if (!options.dryRun) {
    await Promise.all([...drop, ...rewrite.map((r) => r.pack)].map((p) => limit(async () => {
      await remote.backend.delete(packKeys.index(p.name))
      await remote.backend.delete(packKeys.pack(p.name))
    })))
  }
  return result
}

/** Writes the kept objects of `packs` into new packs of `kind`; returns the bytes rewritten. */
async function repack(remote: RemoteStore, kind: PackKind, packs: Array<{pack: RemotePack; keep: string[]}>): Promise<number> {
  const index = await remote.packIndex()
  let builder = new PackBuilder(kind)
  let bytes = 0
  const land = async (): Promise<void> => {
    if (builder.count === 0) return
    const built = builder.finish()
    builder = new PackBuilder(kind)
    await remote.backend.put(packKeys.pack(built.name), built.pack)
    await remote.backend.put(packKeys.index(built.name), built.index)
    index.noteUploaded(built.name, built.index, built.pack.length)
    bytes += built.payload
  }
  for (const r of packs) {
    const got = new Map<string, Buffer>()
    await readObjects(remote, index, r.keep, {onObject: (id, b) => void got.set(id, b)})
    // In the old pack's order: neighbours stay neighbours for the ranged reads of a fetch.
    for (const e of [...r.pack.entries].sort((a, b) => a.offset - b.offset)) {
      const b = got.get(e.id)
      if (!b) continue
      builder.append(e.id, b)
      if (builder.bytes >= packTargetBytes()) await land()
    }
  }
  await land()
  return bytes
}

async function exists(remote: RemoteStore, id: string): Promise<boolean> {
  return (await remote.getObjectBytes(id)) !== null
}
