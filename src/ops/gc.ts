import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import pLimit from 'p-limit'

import {decode} from '../core/codec.js'
import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {isObjectId} from '../core/hash.js'
import type {Repository} from '../repo/repository.js'
import {type BlobRef, decodeCommit, decodeNode, decodeSnapshot, decodeTable, type Row} from '../snapshot/model.js'
import {type ObjectKind, short} from './object-walk.js'
import {collectRoots} from './roots.js'
import type {Workspace} from '../workspace/workspace.js'

export const DEFAULT_GRACE_MS = 60 * 60 * 1000
/** Fewer loose reachable objects than this stay as they are: a pack of a handful buys nothing. */
export const LOOSE_PACK_MIN = 64

export interface GcResult {
  dryRun: boolean
  graceMs: number
  /** Objects reachable from refs, reflogs, the merge state, remote state or the database's baseline. */
  reachable: number
  /** Unreachable objects removed (or, with --dry-run, that would be). */
  removed: {objects: number; bytes: number}
  /** Unreachable objects kept because they are younger than the grace period. */
  young: {objects: number; bytes: number}
  /** Stale temp files in .tilesync/tmp removed. */
  tmp: {files: number; bytes: number}
  /** Temp files kept because they are younger than the grace period (a command may be writing them). */
  youngTmp: {files: number; bytes: number}
  /**
   * Packs merged away (with --dry-run: that would be): small ones merged into one once there
   * are many, and any whose objects other packs all hold (left by an interrupted merge).
   */
  packsMerged: number
  /** Loose files of reachable objects moved into a pack (with --dry-run: that would be). */
  loosePacked: number
}

/**
 * Removes local objects that nothing can reach: not a ref, not any reflog entry, not the
 * merge in progress, not a push journal or other remote state, not the database's
 * change-tracking baseline; then packs loose reachable objects and merges many small packs
 * into one. Only objects older than the grace period go, and everything an object younger
 * than that refers to is kept too, so objects a concurrent command is writing (or has just
 * written and is about to point a ref at) are never removed. Runs under the repository lock;
 * a reachable object that cannot be read stops it before anything is removed (run
 * `tilesync fsck` first).
 */
export async function gc(ws: Workspace, options: {dryRun?: boolean; graceMs?: number; loosePackMin?: number} = {}): Promise<GcResult> {
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS
  const repo = ws.repo
  return repo.withLock('gc', async () => {
    const now = Date.now()
    const cutoff = now - graceMs
    // 1. What is there, and how old: young objects are roots of their own.
    const old = new Map<string, number>()
    const young = new Map<string, number>()
    const loose: string[] = []
    for await (const o of repo.store.list()) {
      ;(o.mtimeMs < cutoff ? old : young).set(o.id, o.size)
      if (!o.pack) loose.push(o.id)
    }
    // 2. Mark.
    const marker = new Marker(repo)
    const roots = await collectRoots(repo)
    for (const r of roots.refs) {
      if (r.id === null) throw new TilesyncError('BAD_CONFIG', `gc stopped before removing anything: ${r.name} is damaged (${r.error})`, {hint: 'run `tilesync fsck` and repair the ref first'})
    }
    await marker.history([...roots.refs.map((r) => r.id!), ...roots.merge.map((m) => m.id), ...roots.reflogs.flatMap((l) => [l.entry.old, l.entry.new]).filter((id): id is string => typeof id === 'string' && isObjectId(id))])
    if (roots.baseline) await marker.mark(roots.baseline, 'snapshot', 'the database\'s change-tracking baseline')
    for (const id of roots.remoteState) await marker.markAny(id)
    const result: GcResult = {dryRun: Boolean(options.dryRun), graceMs, reachable: marker.live.size, removed: {objects: 0, bytes: 0}, young: {objects: 0, bytes: 0}, tmp: {files: 0, bytes: 0}, youngTmp: {files: 0, bytes: 0}, packsMerged: 0, loosePacked: 0}
    // Reachable, not merely young: a young stray is left loose until it is old enough to go.
    const looseReachable = loose.filter((id) => marker.live.has(id))
    for (const [id, size] of young) {
      if (marker.live.has(id)) continue
      result.young.objects++
      result.young.bytes += size
    }
    for (const id of young.keys()) await marker.markAny(id)
    // 3. Sweep: old and unmarked only.
    const victims: string[] = []
    for (const [id, size] of old) {
      if (marker.live.has(id)) continue
      if (!options.dryRun) {
        // Re-check the age at the last moment: a fetch may have just reused this object.
        const mtime = await repo.store.mtimeOf(id)
        if (mtime === null || mtime >= cutoff) continue
        victims.push(id)
      }
      result.removed.objects++
      result.removed.bytes += size
    }
    // Packs holding any victim are rewritten once each, with what they keep.
    if (victims.length) await repo.store.deleteMany(victims)
    // Loose files of reachable objects go into a pack, as git gc packs loose objects.
    result.loosePacked = await repo.store.packLoose(looseReachable, {minCount: options.loosePackMin ?? LOOSE_PACK_MIN, dryRun: options.dryRun})
    // Then many small packs become one, so later lookups read one index instead of hundreds.
    result.packsMerged = await repo.store.consolidatePacks({dryRun: options.dryRun})
    // 4. Temp files and unfinished packs (no index) left by killed commands.
    const entries = await fs.readdir(repo.layout.tmp, {withFileTypes: true}).catch(() => [])
    const leftovers = [...entries.filter((e) => e.isFile()).map((e) => path.join(repo.layout.tmp, e.name)), ...await repo.store.packs.orphans()]
    for (const file of leftovers) {
      const st = await fs.stat(file).catch(() => null)
      if (!st) continue
      if (st.mtimeMs >= cutoff) {
        result.youngTmp.files++
        result.youngTmp.bytes += st.size
        continue
      }
      if (!options.dryRun) await fs.rm(file, {force: true})
      result.tmp.files++
      result.tmp.bytes += st.size
    }
    return result
  })
}

/** Marks what is reachable, reading structured objects (checked by hash) and never blobs. */
class Marker {
  readonly live = new Set<string>()
  private readonly limit = pLimit(16)

  constructor(private readonly repo: Repository) {}

  /** Commits and everything below them, following parents (not past a shallow root's absent parents). */
  async history(tips: string[]): Promise<void> {
    const shallow = this.repo.shallow
    let frontier = [...new Set(tips)]
    while (frontier.length > 0) {
      const next: string[] = []
      for (const id of frontier) {
        if (this.live.has(id)) continue
        this.live.add(id)
        const commit = decodeCommit(await this.read(id, 'commit', `commit ${short(id)}`))
        await this.mark(commit.tree, 'snapshot', `commit ${short(id)}`)
        for (const p of commit.parents) {
          if (this.live.has(p)) continue
          if (shallow.has(id) && !(await this.repo.store.has(p))) continue
          next.push(p)
        }
      }
      frontier = next
    }
  }

  async mark(id: string, kind: Exclude<ObjectKind, 'commit'>, from: string): Promise<void> {
    if (this.live.has(id)) return
    this.live.add(id)
    if (kind === 'blob') return
    const bytes = await this.read(id, kind, from)
    await Promise.all(children(kind, bytes).map((c) => this.mark(c.id, c.kind, from)))
  }

  /** An id of unknown kind (journals, young objects): whatever it is, keep what it refers to. */
  async markAny(id: string): Promise<void> {
    if (this.live.has(id)) return
    let bytes: Buffer
    try {
      bytes = await this.repo.store.get(id)
    } catch (error) {
      // Journals may name objects never stored here; a damaged young object refers to nothing.
      if (isTilesyncError(error, 'OBJECT_MISSING') || isTilesyncError(error, 'OBJECT_CORRUPT')) return
      throw error
    }
    const kind = sniff(bytes)
    if (kind === 'commit') await this.history([id])
    else if (kind === 'blob') this.live.add(id)
    else await this.mark(id, kind, `object ${short(id)}`)
  }

  private async read(id: string, kind: ObjectKind, from: string): Promise<Buffer> {
    try {
      return await this.limit(() => this.repo.store.get(id))
    } catch (error) {
      if (isTilesyncError(error, 'OBJECT_MISSING') || isTilesyncError(error, 'OBJECT_CORRUPT')) {
        throw new TilesyncError(error.code, `gc stopped before removing anything: the ${kind === 'node' ? 'tree node' : kind} ${short(id)} of ${from} is ${error.code === 'OBJECT_MISSING' ? 'missing' : 'damaged'}`, {
          hint: 'run `tilesync fsck` (and `tilesync fsck --repair`) first',
          cause: error,
        })
      }
      throw error
    }
  }
}

function children(kind: 'snapshot' | 'table' | 'node', bytes: Buffer): Array<{id: string; kind: Exclude<ObjectKind, 'commit'>}> {
  if (kind === 'snapshot') return decodeSnapshot(bytes).tables.map((t) => ({id: t.id, kind: 'table' as const}))
  if (kind === 'table') {
    const root = decodeTable(bytes).root
    return root ? [{id: root, kind: 'node'}] : []
  }
  const node = decodeNode(bytes)
  if (node.level > 0) return (node as {entries: Array<{id: string}>}).entries.map((e) => ({id: e.id, kind: 'node' as const}))
  const out: Array<{id: string; kind: 'blob'}> = []
  for (const row of (node as {rows: Row[]}).rows) {
    for (let i = 0; i < row.types.length; i++) if (row.types[i] === 'b') out.push({id: (row.values[i] as BlobRef).id, kind: 'blob'})
  }
  return out
}

const TAGS: Record<string, ObjectKind> = {
  'tilesync.commit': 'commit', 'tilesync.snapshot': 'snapshot', 'tilesync.table': 'table', 'tilesync.node': 'node',
}

/** What a stored object is: structured objects are msgpack arrays starting with a tilesync tag. */
export function sniff(bytes: Buffer): ObjectKind {
  const first = bytes[0]
  const isArray = (first >= 0x90 && first <= 0x9f) || first === 0xdc || first === 0xdd
  if (!isArray || !bytes.subarray(0, 32).includes('tilesync.')) return 'blob'
  try {
    const v = decode(bytes)
    if (Array.isArray(v) && typeof v[0] === 'string' && TAGS[v[0]]) return TAGS[v[0]]
  } catch {
    // not msgpack after all: an ordinary blob
  }
  return 'blob'
}
