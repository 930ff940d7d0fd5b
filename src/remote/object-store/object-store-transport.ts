import * as fs from 'node:fs'
import * as path from 'node:path'

import {TilesyncError} from '../../core/errors.js'
import {RepoLayout} from '../../repo/layout.js'
import {TreeReader} from '../../snapshot/tree-reader.js'
import type {Workspace} from '../../workspace/workspace.js'
import type {Backend} from '../backend.js'
import type {DestroyOptions, PruneOptions, PruneResult, RemoteInventory, VerifyCheck} from '../capabilities.js'
import type {FetchedTip, FetchOptions, PushOutcome, PushRequest, RemoteBranch, RemoteMeta, RemoteObjects, Transport} from '../transport.js'
import {destroyStore} from './destroy-store.js'
import type {ObjectPlan} from './object-plan.js'
import {readObjects} from './pack-reads.js'
import {pruneObjects} from './prune-objects.js'
import {RemoteStore} from './remote-store.js'
import {type HistorySource, sendCommits} from './send-commits.js'
import {readRemoteShallow} from './shallow-remote.js'
import {downloadHistory} from './download-history.js'
import {transferConcurrency} from './transfer.js'
import {verifyBackend} from './verify-backend.js'

/**
 * The transport of every remote that is a plain store of keys (a directory, an S3 or R2
 * bucket): one key per object under objects/, one per branch under refs/heads/, a
 * tilesync.json, a shallow list. The layout is private to src/remote/object-store/.
 */
export class ObjectStoreTransport implements Transport {
  readonly fetchesCommits = true
  readonly store: RemoteStore
  readonly objects: RemoteObjects
  private meta: Promise<Record<string, unknown> | null> | undefined

  /** `cwd`: the repository the remote is opened from, if any (its pack index cache is used by every reader). */
  constructor(backend: Backend, readonly kind: string, readonly location: string, name: string, cwd?: string) {
    const store = new RemoteStore(backend, name)
    if (cwd && fs.existsSync(path.join(cwd, '.tilesync'))) store.cacheDir = path.join(new RepoLayout(cwd).remoteState(name), 'packs')
    this.store = store
    this.objects = {
      read: (id) => store.getObject(id),
      readRaw: (id) => store.getObjectBytes(id),
      write: (id, bytes) => store.putObject(id, bytes),
      sizesOf: (ids) => store.sizesOf(ids),
      list: () => store.listObjects(),
      shallowRoots: () => readRemoteShallow(store),
      branchNames: () => store.branchNames(),
      flush: async () => {
        await store.backend.flush?.()
      },
      localFile: (id) => store.objectFile(id),
    }
  }

  get backend(): Backend {
    return this.store.backend
  }

  async listBranches(): Promise<RemoteBranch[]> {
    return (await this.store.listBranches()).map((b) => ({name: b.name, commit: b.id, version: b.etag}))
  }

  async readBranch(name: string): Promise<RemoteBranch | null> {
    const b = await this.store.readBranch(name)
    return b ? {name, commit: b.id, version: b.etag} : null
  }

  async readMeta(): Promise<RemoteMeta | null> {
    this.meta ??= this.store.readMeta()
    const m = await this.meta
    if (!m) return null
    const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
    const arr = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined)
    const xy = arr(m.xyColumns)
    return {
      database: str(m.database), tileTable: str(m.tileTable), keyColumns: arr(m.keyColumns), imageColumns: arr(m.imageColumns),
      xyColumns: xy?.length === 2 ? (xy as [string, string]) : undefined, defaultBranch: str(m.defaultBranch),
    }
  }

  async fetch(local: Workspace, tips: Array<RemoteBranch | string>, options: FetchOptions = {}): Promise<FetchedTip[]> {
    const out: FetchedTip[] = []
    for (const tip of tips) {
      const id = typeof tip === 'string' ? tip : tip.commit!
      const alongside = options.alongside
      const {stats, commits} = await downloadHistory(local.repo.store, this.store, id, {
        concurrency: transferConcurrency(), progress: options.progress, dryRun: options.dryRun,
        alongside: alongside && ((reader) => alongside(reader, id)), hardLinks: options.hardLinks,
        cacheDir: options.dryRun ? undefined : path.join(local.repo.layout.remoteState(this.store.name), 'packs'),
      })
      out.push({commit: id, commits: commits.length, objects: stats.objects, bytes: stats.bytes})
    }
    return out
  }

  push(local: Workspace, request: PushRequest): Promise<PushOutcome> {
    const store = local.repo.store
    const c = local.repo.config
    const source: HistorySource = {
      reader: local.reader,
      shallow: local.repo.shallow,
      get: (id) => store.get(id),
      size: (id) => store.sizeOf(id),
      tryGet: (id) => store.readRaw(id),
      meta: async (branch) => ({format: 1, database: c.database, tileTable: c.tileTable, keyColumns: c.keyColumns, imageColumns: c.imageColumns, xyColumns: c.xyColumns, defaultBranch: branch}),
    }
    return sendCommits(source, this.store, request, local.repo.layout.remoteState(this.store.name))
  }

  /**
   * Promotion: every commit and tree is read from `source` (verified by hash) to plan the
   * copy, every blob to copy is found there by listing before anything is written, and each
   * object is copied inside the storage service when both are buckets of one account.
   * Never overwrites: a branch that is not an ancestor of the tip is reported as moved, unless
   * the request says force (a release rollback), which still moves it by compare-and-swap.
   */
  async copyFrom(local: Workspace, source: Transport, request: PushRequest): Promise<PushOutcome> {
    if (!(source instanceof ObjectStoreTransport)) {
      throw new TilesyncError('REMOTE_UNSUPPORTED', `cannot promote from ${source.location}: ${source.kind} remotes do not hold objects to copy`, {hint: 'promote between directory, S3 or R2 remotes'})
    }
    const from = source.store
    const sizes = new Map<string, number>()
    const shallow = await readRemoteShallow(from)
    // Commits and trees from the source's tree packs, read at once (verified), not a request each.
    const fromIndex = await from.packIndex()
    const trees = new Map<string, Buffer>()
    const treeIds = [...fromIndex.packs.values()].filter((p) => p.kind === 'tree').flatMap((p) => p.entries.map((e) => e.id))
    await readObjects(from, fromIndex, treeIds, {onObject: (id, bytes) => void trees.set(id, bytes)})
    const reader = new TreeReader({
      get: async (id) => {
        const bytes = trees.get(id) ?? await from.getObject(id)
        sizes.set(id, bytes.length)
        return bytes
      },
      has: async (id) => sizes.has(id),
    }, undefined, shallow)
    const history: HistorySource = {
      reader,
      shallow,
      fastForwardOnly: true,
      get: (id) => from.getObject(id),
      copyTo: (target, id) => target.copyObjectFrom(from, id),
      fromRemote: from,
      size: async (id) => sizes.get(id) ?? 0,
      knownSize: (id) => sizes.get(id),
      meta: async (branch) => {
        const meta = await from.readMeta()
        return meta ? {...meta, defaultBranch: branch} : null
      },
      assertComplete: (commit, blobs, plan) => assertBlobsPresent(from, commit, blobs, plan),
    }
    return sendCommits(history, this.store, request, local.repo.layout.remoteState(this.store.name))
  }

  prune(options: PruneOptions): Promise<PruneResult> {
    return pruneObjects(this.store, options)
  }

  verify(): Promise<VerifyCheck[]> {
    return verifyBackend(this.store.backend)
  }

  deleteBranch(name: string, expected: RemoteBranch): Promise<boolean> {
    return this.store.deleteBranch(name, expected.version)
  }

  destroy(options: DestroyOptions): Promise<RemoteInventory> {
    this.meta = undefined
    return destroyStore(this.store, this.location, options)
  }

  async close(): Promise<void> {
    await this.store.backend.close?.()
  }
}

/**
 * Checks, before anything is written, that every tile blob to copy is on the source with the
 * size its tree records (found by listing, not a request per blob).
 */
async function assertBlobsPresent(from: RemoteStore, commit: string, ids: string[], plan: ObjectPlan): Promise<void> {
  if (ids.length === 0) return
  const found = await from.sizesOf(ids)
  const missing = ids.filter((id) => !found.has(id))
  if (missing.length > 0) {
    throw new TilesyncError('OBJECT_MISSING', `commit ${commit.slice(0, 10)} is incomplete on remote "${from.name}": ${missing.length} object(s) missing, e.g. ${missing[0]}; nothing was promoted`, {
      hint: `push the commit to ${from.name} again from a clone that has it, then promote again`,
      data: {commit, missing: missing.slice(0, 20)},
    })
  }
  const wrong = ids.filter((id) => found.get(id) !== plan.blobs.get(id))
  if (wrong.length > 0) {
    throw new TilesyncError('OBJECT_CORRUPT', `commit ${commit.slice(0, 10)} has ${wrong.length} damaged object(s) on remote "${from.name}" (size differs from the tree), e.g. ${wrong[0]}; nothing was promoted`, {
      hint: `repair ${from.name} by pushing from a clone that has the commit, then promote again`,
      data: {commit, damaged: wrong.slice(0, 20)},
    })
  }
}
