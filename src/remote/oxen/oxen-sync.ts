import {existsSync} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import pLimit from 'p-limit'

import {isTilesyncError, TilesyncError} from '../../core/errors.js'
import {buildDataset, type DatasetPlan} from '../../dataset/build-dataset.js'
import {BLOBS_DIR, LIMITS, MANIFEST_PATH, ROWS_DIR} from '../../dataset/layout.js'
import {parseManifest} from '../../dataset/manifest.js'
import {Md5Cache} from '../../dataset/md5-cache.js'
import {restoreDataset} from '../../dataset/restore.js'
import type {DecodedRow} from '../../dataset/rows-file.js'
import {type DatasetSource, missingFile, tooLarge} from '../../dataset/source.js'
import {commitsNotIn, isAncestor} from '../../history/graph.js'
import type {RemoteConfig} from '../../repo/config.js'
import {Repository} from '../../repo/repository.js'
import {type Commit, encodeCommit} from '../../snapshot/model.js'
import {createProgress} from '../../util/progress.js'
import {computeChangeSet} from '../../snapshot/change-set.js'
import type {CloneOptions, CloneResult} from '../../ops/clone.js'
import type {FetchResult} from '../../ops/fetch.js'
import {DEFAULT_DB} from '../../ops/init.js'
import {mergeCommit} from '../../ops/merge.js'
import type {PullResult} from '../../ops/pull.js'
import type {PushResult} from '../../ops/push.js'
import {remoteConfig} from '../../ops/remotes.js'
import {appendSyncLog, recordSync} from '../../ops/sync-log.js'
import {EMPTY_STATE, sameTables, type TreeState} from '../../snapshot/tree-state.js'
import {Workspace} from '../../workspace/workspace.js'
import {writeNewDatabase} from '../../ops/write-new-database.js'
import {parseRemoteUrl} from '../remote-url.js'
import {readOxenIdentity} from './oxen-auth.js'
import {OxenClient, type OxenClientOptions} from './oxen-client.js'
import {loadHubFiles, loadOxenState, type OxenSyncState, saveHubFiles, saveOxenState} from './oxen-state.js'
import type {OxenCommit, OxenEntry, OxenUploadFile} from './oxen-types.js'
import {sameOxenHash, xxh3_128Hex} from '../../dataset/xxh3.js'

/**
 * push / fetch / pull / clone against an oxen.ai repository, publishing tilesync history as
 * a dataset people can browse (see src/dataset/layout.ts):
 *
 * - push: every tilesync commit the hub branch lacks, parents first, becomes one oxen commit
 *   (same message and author) made through a workspace. Only files whose content differs from
 *   what the branch (or a workspace left by an interrupted push) holds are uploaded: text files
 *   compared by xxh3, images by name (which carries their MD5) and size. Nothing moves on the
 *   hub until the workspace commit, so an interrupted push leaves the branch as it was, and
 *   the next one reuses the same workspace and sends only what is missing.
 * - fetch: every hub commit not yet known is rebuilt from the dataset at that commit. Commits
 *   tilesync made come back with the same ids (verified); commits made with other tools become
 *   new tilesync commits with the oxen message and author, tiles taken from generations.csv
 *   and the other columns from tilesync/ (deterministic, so every machine gets the same ids).
 */

/** Knobs for tests and tuning: anything OxenClient takes except the repository. */
export type OxenTuning = Partial<Omit<OxenClientOptions, 'namespace' | 'repo'>> & {env?: Record<string, string | undefined>}

async function openClient(config: RemoteConfig, tuning: OxenTuning = {}): Promise<OxenClient> {
  const loc = parseRemoteUrl(config.url)
  if (loc.kind !== 'oxen') throw new TilesyncError('REMOTE_UNSUPPORTED', `${config.url} is not an oxen remote`)
  return OxenClient.open({namespace: loc.namespace, repo: loc.repo, ...tuning, host: tuning.host ?? config.host})
}

function hubMoved(remote: string, branch: string, why: string): TilesyncError {
  return new TilesyncError('REMOTE_MOVED', `remote moved: ${remote}/${branch} on the hub ${why}; pull first`, {
    hint: `run \`tilesync pull ${remote} ${branch}\`, then push again`,
  })
}

// ---- reading the hub -------------------------------------------------------------------

/** One commit of the hub as a dataset source: files are listed lazily and downloaded on demand. */
class HubSource implements DatasetSource {
  readonly verifyAll = false
  readonly stats = {files: 0, bytes: 0}
  readonly label: string
  private readonly entries = new Map<string, Promise<OxenEntry | null>>()

  constructor(private readonly client: OxenClient, private readonly revision: string) {
    this.label = `${client.location}@${revision.slice(0, 10)}`
  }

  private entry(p: string): Promise<OxenEntry | null> {
    let e = this.entries.get(p)
    if (!e) {
      e = this.client.getEntry(this.revision, p)
      this.entries.set(p, e)
    }
    return e
  }

  async exists(p: string): Promise<boolean> {
    const e = await this.entry(p)
    return e !== null && !e.is_dir
  }

  async quickHash(p: string): Promise<string | null> {
    const e = await this.entry(p)
    return e && !e.is_dir ? e.hash : null
  }

  async read(p: string, maxBytes: number): Promise<Buffer> {
    let bytes: Buffer
    try {
      bytes = await this.client.downloadFile(this.revision, p)
    } catch (err) {
      if (isTilesyncError(err, 'OBJECT_MISSING')) throw missingFile(this.label, p)
      throw err
    }
    if (bytes.length > maxBytes) throw tooLarge(this.label, p, bytes.length, maxBytes)
    this.stats.files++
    this.stats.bytes += bytes.length
    return bytes
  }
}

interface HubFile {
  hash: string
  size: number
}

/** Every file at `revision` (a commit or a workspace), walking folders level by level. */
async function listAll(client: OxenClient, revision: string): Promise<Map<string, HubFile>> {
  const out = new Map<string, HubFile>()
  const limit = pLimit(4)
  let level = ['']
  while (level.length > 0) {
    const next: string[] = []
    await Promise.all(level.map((dir) => limit(async () => {
      let entries: OxenEntry[]
      try {
        entries = await client.listDir(revision, dir)
      } catch (err) {
        if (dir === '' && isTilesyncError(err, 'OBJECT_MISSING')) return
        throw err
      }
      for (const e of entries) {
        const p = dir ? `${dir}/${e.filename}` : e.filename
        if (e.is_dir) next.push(p)
        else out.set(p, {hash: e.hash, size: Number(e.size)})
      }
    })))
    level = next
  }
  return out
}

/** Hub commits reachable from `head`, parents before children. */
function parentsFirst(head: string, commits: OxenCommit[]): OxenCommit[] {
  const byId = new Map(commits.map((c) => [c.id, c]))
  const out: OxenCommit[] = []
  const done = new Set<string>()
  const stack: Array<{id: string; expanded: boolean}> = [{id: head, expanded: false}]
  while (stack.length > 0) {
    const top = stack.pop()!
    const c = byId.get(top.id)
    if (!c || done.has(top.id)) continue
    if (top.expanded) {
      done.add(top.id)
      out.push(c)
      continue
    }
    stack.push({id: top.id, expanded: true})
    for (const p of [...(c.parent_ids ?? [])].reverse()) if (!done.has(p)) stack.push({id: p, expanded: false})
  }
  return out
}

/** tilesync commits, parents before children (so a merge's parents land on the hub first). */
async function topoOrder(ws: Workspace, newestFirst: string[]): Promise<string[]> {
  const wanted = new Set(newestFirst)
  const out: string[] = []
  const done = new Set<string>()
  for (const start of [...newestFirst].reverse()) {
    const stack: Array<{id: string; expanded: boolean}> = [{id: start, expanded: false}]
    while (stack.length > 0) {
      const top = stack.pop()!
      if (done.has(top.id) || !wanted.has(top.id)) continue
      if (top.expanded) {
        done.add(top.id)
        out.push(top.id)
        continue
      }
      stack.push({id: top.id, expanded: true})
      for (const p of [...(await ws.reader.commit(top.id)).parents].reverse()) if (!done.has(p)) stack.push({id: p, expanded: false})
    }
  }
  return out
}

interface FetchContext {
  md5: Md5Cache
  partCache: Map<string, DecodedRow[]>
  files: number
  bytes: number
}

/**
 * Maps every hub commit reachable from `head` to a tilesync commit, rebuilding those not yet
 * known from their dataset. Returns how many tilesync commits were added.
 */
async function importHubHistory(ws: Workspace, client: OxenClient, state: OxenSyncState, head: string, ctx: FetchContext, dryRun: boolean): Promise<number> {
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

async function fetchBranches(ws: Workspace, client: OxenClient, name: string, branch: string | undefined, dryRun: boolean): Promise<FetchResult> {
  await client.getRepo()
  const state = await loadOxenState(ws.repo, name, client.location)
  let branches = await client.listBranches()
  if (branch) {
    branches = branches.filter((b) => b.name === branch)
    if (branches.length === 0) throw new TilesyncError('REF_MISSING', `remote "${name}" (${client.location}) has no branch "${branch}"`, {hint: 'push to it first'})
  }
  const ctx: FetchContext = {md5: await Md5Cache.open(ws.repo), partCache: new Map(), files: 0, bytes: 0}
  const result: FetchResult = {remote: name, branches: [], objects: 0, bytes: 0, dryRun}
  try {
    for (const b of branches) await fetchBranch(ws, client, name, b, state, ctx, result, dryRun)
  } finally {
    // Commits rebuilt before a failure stay known, so the next fetch does not redo them.
    if (!dryRun) await saveOxenState(ws.repo, name, state)
  }
  result.objects = ctx.files
  result.bytes = ctx.bytes
  return result
}

async function fetchBranch(ws: Workspace, client: OxenClient, name: string, b: {name: string; commit_id: string}, state: OxenSyncState, ctx: FetchContext, result: FetchResult, dryRun: boolean): Promise<void> {
  {
    const trackingRef = `refs/remotes/${name}/${b.name}`
    const before = await ws.repo.refs.read(trackingRef)
    const files0 = ctx.files
    const bytes0 = ctx.bytes
    const commits = await importHubHistory(ws, client, state, b.commit_id, ctx, dryRun)
    if (dryRun) {
      result.branches.push({branch: b.name, from: before, to: state.commits[b.commit_id] || before || '', commits, objects: 0, bytes: 0})
      return
    }
    const tip = state.commits[b.commit_id]
    state.branches[b.name] = {oxen: b.commit_id, tilesync: tip}
    await saveOxenState(ws.repo, name, state)
    if (!tip) return
    if (before !== tip) await ws.repo.refs.update(trackingRef, tip, `fetch: ${before?.slice(0, 10) ?? 'new'} -> ${tip.slice(0, 10)} (hub ${b.commit_id.slice(0, 10)})`)
    result.branches.push({branch: b.name, from: before, to: tip, commits, objects: ctx.files - files0, bytes: ctx.bytes - bytes0})
  }
}

// ---- fetch / pull ------------------------------------------------------------------------

export async function fetchOxen(ws: Workspace, name: string, options: {branch?: string; dryRun?: boolean; oxen?: OxenTuning} = {}): Promise<FetchResult> {
  const client = await openClient(remoteConfig(ws.repo, name), options.oxen)
  return recordSync(ws.repo, {op: 'fetch', remote: name, branch: options.branch}, () => fetchBranches(ws, client, name, options.branch, Boolean(options.dryRun)))
}

export async function pullOxen(ws: Workspace, name: string, branch: string, options: {dryRun?: boolean; oxen?: OxenTuning} = {}): Promise<PullResult> {
  const client = await openClient(remoteConfig(ws.repo, name), options.oxen)
  return recordSync(ws.repo, {op: 'pull', remote: name, branch}, async () => {
    const before = await ws.repo.refs.headCommit()
    const fetched = await fetchBranches(ws, client, name, branch, Boolean(options.dryRun))
    const result: PullResult = {remote: name, branch, fetch: fetched, merge: null, from: before, to: before, objects: fetched.objects, bytes: fetched.bytes, dryRun: Boolean(options.dryRun)}
    if (options.dryRun) return result
    const theirs = fetched.branches[0]?.to
    if (!theirs) throw new TilesyncError('REMOTE_EMPTY', `${client.location} has no tile data on branch ${branch}`, {hint: 'push to it first'})
    result.merge = await mergeCommit(ws, theirs, `${name}/${branch}`)
    result.to = result.merge.head
    return result
  })
}

// ---- push ------------------------------------------------------------------------------

export interface OxenPushOptions {
  force?: boolean
  dryRun?: boolean
  /** Remove image files of tiles that no longer exist (default: the dataset only grows). */
  prune?: boolean
  oxen?: OxenTuning
}

export type OxenPushResult = PushResult & {removed: number; oxenCommits: string[]; hubCommit: string | null}

const SLICE_BYTES = 64 * 1024 * 1024

export async function pushOxen(ws: Workspace, name: string, branch: string, options: OxenPushOptions = {}): Promise<OxenPushResult> {
  const config = remoteConfig(ws.repo, name)
  const client = await openClient(config, options.oxen)
  return recordSync(ws.repo, {op: 'push', remote: name, branch}, () => ws.repo.withLock('push', () => pushLocked(ws, client, name, branch, options)))
}

async function pushLocked(ws: Workspace, client: OxenClient, name: string, branch: string, options: OxenPushOptions): Promise<OxenPushResult> {
  const local = await ws.repo.refs.read(`refs/heads/${branch}`)
  if (!local) throw new TilesyncError('REF_MISSING', `no local branch "${branch}" to push`, {hint: 'commit first, or name an existing branch'})
  const state = await loadOxenState(ws.repo, name, client.location)
  const dryRun = Boolean(options.dryRun)
  let exists = (await client.findRepo()) !== null
  if (!exists && !dryRun) {
    const loc = parseRemoteUrl(remoteConfig(ws.repo, name).url)
    await client.createRepo({description: `Map tiles published by tilesync (${loc.kind === 'oxen' ? loc.repo : ''})`})
    exists = true
  }
  const hubHead = exists ? (await client.getBranch(branch))?.commit_id ?? null : null
  let baseTs: string | null = null
  if (hubHead) {
    if (!(hubHead in state.commits)) await recognise(ws, client, state, branch, hubHead, name, Boolean(options.force))
    baseTs = state.commits[hubHead] || null
    const known = baseTs !== null && (await ws.repo.store.has(baseTs))
    if (baseTs && !options.force && (!known || !(await isAncestor(ws.reader, baseTs, local)))) throw hubMoved(name, branch, 'has commits you do not have')
    if (baseTs && !known) baseTs = null
  }
  const result: OxenPushResult = {
    remote: name, branch, from: baseTs, to: local, upToDate: false, dryRun, commits: 0, objects: 0, bytes: 0, skipped: 0,
    removed: 0, oxenCommits: [], hubCommit: hubHead,
  }
  if (baseTs === local) {
    if (!dryRun) await ws.repo.refs.update(`refs/remotes/${name}/${branch}`, local, 'push: up to date')
    return {...result, upToDate: true}
  }
  // Forced over a history it cannot follow, push still skips what is already on the hub.
  const exclude = options.force ? [...new Set(Object.values(state.commits).filter(Boolean))] : baseTs ? [baseTs] : []
  const onHub = []
  for (const id of exclude) if (await ws.repo.store.has(id)) onHub.push(id)
  const commits = await topoOrder(ws, await commitsNotIn(ws.reader, local, onHub))
  const cache = await loadHubFiles(ws.repo, name, branch)
  let view: Map<string, HubFile>
  if (!hubHead) view = new Map()
  else if (cache?.head === hubHead) view = new Map(Object.entries(cache.files).map(([p, [hash, size]]) => [p, {hash, size}]))
  else view = await listAll(client, hubHead)

  const md5 = await Md5Cache.open(ws.repo)
  const loc = parseRemoteUrl(remoteConfig(ws.repo, name).url)
  const title = loc.kind === 'oxen' ? `${loc.namespace}/${loc.repo}` : name
  const identity = await readOxenIdentity(options.oxen?.env).catch(() => null)
  const progress = await createProgress('files')
  let head = hubHead
  try {
    for (const id of commits) {
      const plan = await buildDataset(ws.reader, id, {store: ws.repo.store, md5, config: ws.repo.config, title})
      if (dryRun) {
        const {uploads, removals} = diffPlan(plan, view, Boolean(options.prune))
        result.objects += uploads.length
        result.bytes += uploads.reduce((n, u) => n + u.size, 0)
        result.skipped += plan.texts.length + plan.blobs.size - uploads.length
        result.removed += removals.length
        applyToView(view, uploads, removals)
        result.commits++
        continue
      }
      const landed = await pushOne(ws, client, state, {name, branch, id, plan, head, view, prune: Boolean(options.prune), identity, result, progress})
      head = landed
      result.commits++
      result.oxenCommits.push(landed)
      await ws.repo.refs.update(`refs/remotes/${name}/${branch}`, id, `push: hub ${landed.slice(0, 10)}`)
    }
  } finally {
    progress.stop()
    if (!dryRun && head) {
      await saveHubFiles(ws.repo, name, branch, {head, files: Object.fromEntries([...view].map(([p, f]) => [p, [f.hash, f.size] as [string, number]]))})
    }
  }
  result.hubCommit = head
  return result
}

/**
 * A hub head tilesync has not seen: an empty dataset (the hub's first commit) is fine to push
 * onto, as is the commit of our own push that landed before its answer came back. Anything
 * else is someone else's work: refuse (unless forced).
 */
async function recognise(ws: Workspace, client: OxenClient, state: OxenSyncState, branch: string, hubHead: string, name: string, force: boolean): Promise<void> {
  const src = new HubSource(client, hubHead)
  const hasManifest = await src.exists(MANIFEST_PATH)
  if (!hasManifest && !(await src.exists('generations.csv'))) {
    state.commits[hubHead] = ''
    return
  }
  const pending = state.pending[branch]
  if (pending && hasManifest) {
    const commit = await client.getCommit(hubHead)
    const manifest = parseManifest(await src.read(MANIFEST_PATH, LIMITS.manifestBytes))
    if (commit && (commit.parent_ids?.[0] ?? '') === pending.base && manifest.commit.id === pending.tilesync) {
      state.commits[hubHead] = pending.tilesync
      return
    }
  }
  if (force) {
    state.commits[hubHead] = ''
    return
  }
  throw hubMoved(name, branch, `moved to ${hubHead.slice(0, 10)}, which this repository has not fetched`)
}

interface Upload {
  path: string
  size: number
  bytes?: Buffer
  blob?: string
}

function diffPlan(plan: DatasetPlan, view: Map<string, HubFile>, prune: boolean): {uploads: Upload[]; removals: string[]} {
  const uploads: Upload[] = []
  const wanted = new Set<string>()
  for (const t of plan.texts) {
    wanted.add(t.path)
    const cur = view.get(t.path)
    if (!cur || !sameOxenHash(cur.hash, xxh3_128Hex(t.bytes))) uploads.push({path: t.path, size: t.bytes.length, bytes: t.bytes})
  }
  for (const [p, ref] of plan.blobs) {
    wanted.add(p)
    // Image names carry their MD5 and blob names their BLAKE3: same name and size, same file.
    const cur = view.get(p)
    if (!cur || cur.size !== ref.size) uploads.push({path: p, size: ref.size, blob: ref.id})
  }
  const folders = plan.layers.map((l) => `${l.folder}/`)
  const removals = [...view.keys()].filter((p) => !wanted.has(p) &&
    (p.startsWith(`${ROWS_DIR}/`) || (prune && (p.startsWith(`${BLOBS_DIR}/`) || folders.some((f) => p.startsWith(f))))))
  return {uploads, removals}
}

function applyToView(view: Map<string, HubFile>, uploads: Upload[], removals: string[], hashes?: Map<string, string>): void {
  for (const u of uploads) view.set(u.path, {hash: hashes?.get(u.path) ?? '', size: u.size})
  for (const p of removals) view.delete(p)
}

interface PushOne {
  name: string
  branch: string
  id: string
  plan: DatasetPlan
  head: string | null
  view: Map<string, HubFile>
  prune: boolean
  identity: {name: string; email: string} | null
  result: OxenPushResult
  progress: Awaited<ReturnType<typeof createProgress>>
}

/** One tilesync commit -> one oxen commit through a workspace. Returns the new hub commit id. */
async function pushOne(ws: Workspace, client: OxenClient, state: OxenSyncState, p: PushOne): Promise<string> {
  const {branch, id, plan, result} = p
  const previous = state.pending[branch]
  // The same commit onto the same base reuses the workspace an interrupted push left behind.
  const workspaceId = previous && previous.tilesync === id && previous.base === (p.head ?? '')
    ? previous.workspace
    : `tilesync-${id.slice(0, 24)}-${(p.head ?? 'root').slice(0, 12)}`
  if (previous && previous.workspace !== workspaceId) await client.deleteWorkspace(previous.workspace).catch(() => {})
  state.pending[branch] = {workspace: workspaceId, base: p.head ?? '', tilesync: id}
  await saveOxenState(ws.repo, p.name, state)

  const workspace = await client.createWorkspace(branch, workspaceId)
  let base = p.head
  if (base === null) {
    // On an empty repository the hub made its first commit for the workspace: that is our base.
    base = workspace.commit.id
    state.commits[base] ??= ''
    state.pending[branch].base = base
    await saveOxenState(ws.repo, p.name, state)
  }
  // A workspace left by an interrupted push already holds some files: compare with it.
  const staged = await client.workspaceChanges(workspaceId)
  const resumed = staged.added.length + staged.modified.length + staged.removed.length > 0
  const current = resumed ? await listAll(client, workspaceId) : p.view
  const {uploads, removals} = diffPlan(plan, current, p.prune)
  result.skipped += plan.texts.length + plan.blobs.size - uploads.length

  // Images and blobs first, then the rows files, then the CSV, README and manifest.
  const rank = (path: string) => (path.startsWith(`${ROWS_DIR}/`) ? 1 : path.includes('/') && !path.startsWith('tilesync/manifest') ? 0 : 2)
  const byDir = new Map<string, Upload[]>()
  for (const u of [...uploads].sort((a, b) => rank(a.path) - rank(b.path) || (a.path < b.path ? -1 : 1))) {
    const dir = u.path.includes('/') ? u.path.slice(0, u.path.lastIndexOf('/')) : ''
    byDir.set(dir, [...(byDir.get(dir) ?? []), u])
  }
  p.progress.start(uploads.length, `push ${id.slice(0, 10)}`)
  const hashes = new Map<string, string>()
  for (const [dir, group] of byDir) {
    let slice: OxenUploadFile[] = []
    let size = 0
    const send = async () => {
      if (slice.length === 0) return
      const done = await client.uploadFiles(workspaceId, dir, slice)
      result.objects += done.files
      result.bytes += done.bytes
      p.progress.increment(slice.length)
      slice = []
      size = 0
    }
    for (const u of group) {
      const bytes = u.bytes ?? await ws.repo.store.get(u.blob!)
      hashes.set(u.path, xxh3_128Hex(bytes))
      slice.push({path: dir ? u.path.slice(dir.length + 1) : u.path, bytes})
      size += bytes.length
      if (size >= SLICE_BYTES) await send()
    }
    await send()
  }
  for (let i = 0; i < removals.length; i += 500) await client.removeFiles(workspaceId, removals.slice(i, i + 500))
  result.removed += removals.length

  const commit = await ws.reader.commit(id)
  const who = commit.author.name && commit.author.email ? commit.author : p.identity ?? commit.author
  p.progress.stop()
  const landed = await client.commitWorkspace(workspaceId, branch, {message: commit.message, author: who.name, email: who.email})
  if (resumed) {
    p.view.clear()
    for (const [k, v] of current) p.view.set(k, v)
  }
  applyToView(p.view, uploads, removals, hashes)
  state.commits[landed.id] = id
  state.branches[branch] = {oxen: landed.id, tilesync: id}
  delete state.pending[branch]
  await saveOxenState(ws.repo, p.name, state)
  return landed.id
}

// ---- clone -------------------------------------------------------------------------------

export async function cloneOxen(options: CloneOptions & {oxen?: OxenTuning}): Promise<CloneResult> {
  const loc = parseRemoteUrl(options.url)
  if (loc.kind !== 'oxen') throw new TilesyncError('REMOTE_UNSUPPORTED', `${options.url} is not an oxen remote`)
  const root = path.resolve(options.dir ?? loc.repo)
  if (existsSync(path.join(root, '.tilesync'))) {
    throw new TilesyncError('DESTINATION_EXISTS', `${root} already holds a tilesync repository`, {hint: 'clone into a new directory'})
  }
  const remote: RemoteConfig = {url: options.url, ...Object.fromEntries(Object.entries(options.remote ?? {}).filter(([, v]) => v !== undefined))}
  const client = await openClient(remote, options.oxen)
  await client.getRepo()
  const branches = await client.listBranches()
  if (branches.length === 0) throw new TilesyncError('REMOTE_EMPTY', `${client.location} has no branches to clone`, {hint: 'push to it first'})
  const branch = options.branch ? branches.find((b) => b.name === options.branch) : branches.find((b) => b.name === 'main') ?? branches[0]
  if (!branch) throw new TilesyncError('REF_MISSING', `${client.location} has no branch "${options.branch}"`, {hint: `branches: ${branches.map((b) => b.name).join(', ')}`})
  const head = new HubSource(client, branch.commit_id)
  const manifest = (await head.exists(MANIFEST_PATH)) ? parseManifest(await head.read(MANIFEST_PATH, LIMITS.manifestBytes)) : null
  const pushedDb = manifest?.config.database
  const database = options.db ?? (pushedDb && !path.isAbsolute(pushedDb) && !pushedDb.split(/[\\/]/).includes('..') ? pushedDb : DEFAULT_DB)
  const dbPath = path.resolve(root, database)
  if (existsSync(dbPath)) throw new TilesyncError('DESTINATION_EXISTS', `${dbPath} already exists`, {hint: 'clone into an empty directory or pass --db with a new path'})
  if (options.dryRun) {
    const commits = await client.history(branch.commit_id)
    return {root, database, branch: branch.name, head: '', commits: commits.length, objects: 0, bytes: 0, rows: 0, dryRun: true}
  }
  const createdRoot = !existsSync(root)
  await fs.mkdir(root, {recursive: true})
  try {
    const c = manifest?.config ?? {}
    const repo = await Repository.create(root, {
      version: 1, database: database.split(path.sep).join('/'), tileTable: manifest?.tileTable.name ?? 'quadrants',
      ...(c.keyColumns ? {keyColumns: c.keyColumns} : {}), ...(c.imageColumns ? {imageColumns: c.imageColumns} : {}), ...(c.xyColumns ? {xyColumns: c.xyColumns} : {}),
      remotes: {origin: remote},
    })
    const start = Date.now()
    const ws = new Workspace(repo)
    const fetched = await fetchBranches(ws, client, 'origin', branch.name, false)
    const tip = fetched.branches[0]?.to
    if (!tip) throw new TilesyncError('REMOTE_EMPTY', `${client.location} has no tile data on branch ${branch.name}`, {hint: 'push to it first'})
    const target = await ws.stateOf(tip)
    if (target.snapshot.tileTable && target.snapshot.tileTable !== repo.config.tileTable) {
      repo.config.tileTable = target.snapshot.tileTable
      await repo.writeConfig()
    }
    const rows = await buildDatabase(ws, target, dbPath)
    await repo.refs.update(`refs/heads/${branch.name}`, tip, `clone: from ${options.url}`, null)
    await repo.refs.setHead({kind: 'branch', ref: `refs/heads/${branch.name}`, branch: branch.name}, `clone: from ${options.url}`)
    await appendSyncLog(repo, {time: new Date(start).toISOString(), op: 'clone', remote: 'origin', branch: branch.name, from: null, to: tip, objects: fetched.objects, bytes: fetched.bytes, durationMs: Date.now() - start, result: 'ok'})
    return {root, database: repo.config.database, branch: branch.name, head: tip, commits: fetched.branches[0].commits, objects: fetched.objects, bytes: fetched.bytes, rows, dryRun: false}
  } catch (error) {
    if (createdRoot) await fs.rm(root, {recursive: true, force: true}).catch(() => {})
    else await fs.rm(path.join(root, '.tilesync'), {recursive: true, force: true}).catch(() => {})
    throw error
  }
}

/** Writes `target` into a new database: a temp file renamed into place (as clone does). */
async function buildDatabase(ws: Workspace, target: TreeState, dbPath: string): Promise<number> {
  await fs.mkdir(path.dirname(dbPath), {recursive: true})
  const tmpDb = `${dbPath}.tilesync-clone.tmp`
  await fs.rm(tmpDb, {force: true})
  try {
    const rows = await writeNewDatabase(tmpDb, target, ws.reader, ws)
    await fs.rename(tmpDb, dbPath)
    return rows
  } catch (error) {
    await fs.rm(tmpDb, {force: true})
    throw error
  }
}
