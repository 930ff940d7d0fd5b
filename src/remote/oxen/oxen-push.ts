import {TilesyncError} from '../../core/errors.js'
import {buildDataset, type DatasetPlan} from '../../dataset/build-dataset.js'
import {BLOBS_DIR, LIMITS, MANIFEST_PATH, ROWS_DIR} from '../../dataset/layout.js'
import {parseManifest} from '../../dataset/manifest.js'
import {Md5Cache} from '../../dataset/md5-cache.js'
import {sameOxenHash, xxh3_128Hex} from '../../dataset/xxh3.js'
import {commitsNotIn} from '../../history/graph.js'
import type {Progress} from '../../util/progress.js'
import type {Workspace} from '../../workspace/workspace.js'
import type {PushOutcome, PushRequest} from '../transport.js'
import {type HubFile, HubSource, listAll} from './hub-source.js'
import type {OxenClient} from './oxen-client.js'
import {loadHubFiles, type OxenSyncState, type PendingPush, saveHubFiles, saveOxenState} from './oxen-state.js'
import type {OxenUploadFile} from './oxen-types.js'

/**
 * Push to an oxen.ai repository: every tilesync commit the hub branch lacks, parents first,
 * becomes one oxen commit (same message and author) made through a workspace, publishing the
 * history as a dataset people can browse (see src/dataset/layout.ts). Only files whose content
 * differs from what the branch (or a workspace left by an interrupted push) holds are
 * uploaded: text files compared by xxh3, images by name (which carries their MD5) and size.
 * Nothing moves on the hub until the workspace commit, so an interrupted push leaves the
 * branch as it was, and the next one reuses the same workspace and sends only what is missing.
 */

const SLICE_BYTES = 64 * 1024 * 1024

const silent: Progress = {enabled: false, start() {}, increment() {}, stop() {}}

export interface HubPush {
  ws: Workspace
  client: OxenClient
  state: OxenSyncState
  /** The remote's name here (where its state is kept). */
  name: string
  /** namespace/repo, for the README's title. */
  title: string
  /** The hub branch's head as read before (null: no such branch yet). */
  hubHead: string | null
  identity: {name: string; email: string} | null
}

/** Counts of one push, as the oxen push reports them. */
interface Tally {
  commits: number
  objects: number
  bytes: number
  skipped: number
  removed: number
}

/**
 * Sends the commits after `request.have` up to `request.tip` (forced: all those the hub does
 * not already hold) and returns what was sent, or `moved` when the hub refused a commit
 * because the branch moved under it.
 */
export async function pushToHub(p: HubPush, request: PushRequest): Promise<PushOutcome> {
  const {ws, client, state, name} = p
  const {branch} = request
  const dryRun = Boolean(request.dryRun)
  if (p.hubHead && request.force && !(p.hubHead in state.commits)) state.commits[p.hubHead] = ''
  // Forced over a history it cannot follow, push still skips what is already on the hub.
  const exclude = request.force ? [...new Set(Object.values(state.commits).filter(Boolean))] : request.have
  const onHub = []
  for (const id of exclude) if (await ws.repo.store.has(id)) onHub.push(id)
  const commits = await topoOrder(ws, await commitsNotIn(ws.reader, request.tip, onHub))
  let head = p.hubHead
  let view: Map<string, HubFile>
  if (!head) {
    // A branch the hub does not have yet starts at the hub commit of the nearest ancestor.
    head = await branchPoint(ws, client, state, commits[0], request.tip)
    // The hub opens workspaces only on existing branches of a non-empty repository
    // (get_or_create answers 400 "Branch not found ... create the branch first").
    if (head && !dryRun) {
      try {
        await client.createBranch(branch, {commitId: head})
      } catch (err) {
        if ((err as {code?: string}).code !== 'REF_EXISTS') throw err
        // Created meanwhile (by another push): fine only if it still starts where we would.
        if ((await client.getBranch(branch))?.commit_id !== head) return {status: 'moved', tip: null}
      }
    }
    view = head ? await listAll(client, head) : new Map()
  } else {
    const cache = await loadHubFiles(ws.repo, name, branch)
    view = cache?.head === head ? new Map(Object.entries(cache.files).map(([f, [hash, size]]) => [f, {hash, size}])) : await listAll(client, head)
  }
  const tally: Tally = {commits: 0, objects: 0, bytes: 0, skipped: 0, removed: 0}
  const oxenCommits: string[] = []
  const md5 = await Md5Cache.open(ws.repo, {writeBack: !dryRun})
  const progress = request.progress ?? silent
  let moved = false
  try {
    for (const id of commits) {
      const plan = await buildDataset(ws.reader, id, {store: ws.repo.store, md5, config: ws.repo.config, title: p.title})
      if (dryRun) {
        const {uploads, removals} = diffPlan(plan, view, Boolean(request.prune))
        tally.objects += uploads.length
        tally.bytes += uploads.reduce((n, u) => n + u.size, 0)
        tally.skipped += plan.texts.length + plan.blobs.size - uploads.length
        tally.removed += removals.length
        applyToView(view, uploads, removals)
        tally.commits++
        continue
      }
      let landed: string
      try {
        landed = await pushOne(ws, client, state, {name, branch, id, plan, head, view, prune: Boolean(request.prune), identity: p.identity, result: tally, progress})
      } catch (error) {
        if ((error as {code?: string}).code !== 'REMOTE_MOVED') throw error
        moved = true
        break
      }
      head = landed
      tally.commits++
      oxenCommits.push(landed)
      await request.moved?.(id, `hub ${landed.slice(0, 10)}`)
    }
  } finally {
    progress.stop()
    if (!dryRun && head) {
      await saveHubFiles(ws.repo, name, branch, {head, files: Object.fromEntries([...view].map(([f, v]) => [f, [v.hash, v.size] as [string, number]]))})
    }
  }
  if (moved) return {status: 'moved', tip: null}
  const {removed, ...stats} = tally
  return {status: dryRun ? 'dry-run' : 'landed', ...stats, details: {removed, oxenCommits, hubCommit: head}}
}

/**
 * Where a new hub branch starts: the hub commit of the nearest ancestor of `first` that is
 * on the hub, else a commit holding no tile data (the hub's first), else any branch's head.
 * null on an empty repository, where opening the workspace makes the first commit.
 */
async function branchPoint(ws: Workspace, client: OxenClient, state: OxenSyncState, first: string | undefined, tip: string): Promise<string | null> {
  const branches = await client.listBranches().catch(() => [])
  if (branches.length === 0) return null
  const hubOf = new Map<string, string>()
  for (const [hub, ts] of Object.entries(state.commits)) if (ts) hubOf.set(ts, hub)
  const seen = new Set<string>()
  // Nothing to send (the tip is on the hub already, under another branch): start at the tip.
  const queue = first ? [...(await ws.reader.commit(first)).parents] : [tip]
  while (queue.length > 0) {
    const id = queue.shift()!
    if (seen.has(id)) continue
    seen.add(id)
    const hub = hubOf.get(id)
    if (hub && (await client.getCommit(hub))) return hub
    if (await ws.repo.store.has(id)) queue.push(...(await ws.reader.commit(id)).parents)
  }
  for (const [hub, ts] of Object.entries(state.commits)) if (ts === '' && (await client.getCommit(hub))) return hub
  return branches[0].commit_id
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

/**
 * What a hub head tilesync has not seen holds: nothing (an empty dataset, the hub's first
 * commit: fine to push onto), the commit of our own push that landed before its answer came
 * back, or someone else's work ('unknown': a pull is needed first). The first two are
 * recorded in `state`.
 */
export async function recognise(client: OxenClient, state: OxenSyncState, branch: string, hubHead: string): Promise<'known' | 'unknown'> {
  const src = new HubSource(client, hubHead)
  const hasManifest = await src.exists(MANIFEST_PATH)
  if (!hasManifest && !(await src.exists('generations.csv'))) {
    state.commits[hubHead] = ''
    return 'known'
  }
  const pending = state.pending[branch]
  if (pending && hasManifest) {
    const commit = await client.getCommit(hubHead)
    const manifest = parseManifest(await src.read(MANIFEST_PATH, LIMITS.manifestBytes))
    if (commit && (commit.parent_ids?.[0] ?? '') === pending.base && manifest.commit.id === pending.tilesync) {
      state.commits[hubHead] = pending.tilesync
      return 'known'
    }
  }
  return 'unknown'
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
  result: Tally
  progress: Progress
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
  const pending: PendingPush = previous && previous.workspace === workspaceId ? previous : {workspace: workspaceId, base: p.head ?? '', tilesync: id}
  state.pending[branch] = pending
  await saveOxenState(ws.repo, p.name, state)

  const workspace = await client.createWorkspace(branch, workspaceId)
  if (p.head !== null && workspace.commit.id !== p.head) {
    // The hub opens a new workspace on the branch's CURRENT head: the branch moved since it was
    // read, and what this push would upload was worked out against the old head.
    await client.deleteWorkspace(workspaceId).catch(() => {})
    delete state.pending[branch]
    await saveOxenState(ws.repo, p.name, state)
    throw new TilesyncError('REMOTE_MOVED', `hub branch ${branch} moved since ${p.head.slice(0, 10)}`, {hint: 'pull first'})
  }
  let base = p.head
  if (base === null) {
    // On an empty repository the hub made its first commit for the workspace: that is our base.
    base = workspace.commit.id
    state.commits[base] ??= ''
    state.pending[branch].base = base
    await saveOxenState(ws.repo, p.name, state)
  }
  const {uploads, removals} = diffPlan(plan, p.view, p.prune)
  // A workspace left by an interrupted push already holds some files. What it holds is read
  // from its changes (paths only: the hub's hash there is always empty) and from the journal
  // of what this push staged; a path in both, with the content planned now, is not sent again.
  const journal = pending.sent ?? {}
  pending.sent = journal
  const staged = await client.workspaceChanges(workspaceId)
  const stagedPaths = new Set([...staged.added, ...staged.modified])
  const stagedRemovals = new Set(staged.removed)
  const identity = (u: Upload) => (u.blob ? `b:${u.blob}` : `x:${xxh3_128Hex(u.bytes!)}`)
  const toSend = uploads.filter((u) => !(stagedPaths.has(u.path) && journal[u.path] === identity(u)))
  const toRemove = removals.filter((r) => !stagedRemovals.has(r))
  result.skipped += plan.texts.length + plan.blobs.size - toSend.length
  await client.validateWorkspace(workspaceId, toSend.reduce((n, u) => n + u.size, 0))

  // Images and blobs first, then the rows files, then the CSV, README and manifest.
  const rank = (path: string) => (path.startsWith(`${ROWS_DIR}/`) ? 1 : path.includes('/') && !path.startsWith('tilesync/manifest') ? 0 : 2)
  const byDir = new Map<string, Upload[]>()
  for (const u of [...toSend].sort((a, b) => rank(a.path) - rank(b.path) || (a.path < b.path ? -1 : 1))) {
    const dir = u.path.includes('/') ? u.path.slice(0, u.path.lastIndexOf('/')) : ''
    byDir.set(dir, [...(byDir.get(dir) ?? []), u])
  }
  p.progress.start(toSend.length, `push ${id.slice(0, 10)}`)
  const hashes = new Map<string, string>()
  for (const t of plan.texts) hashes.set(t.path, xxh3_128Hex(t.bytes))
  for (const [dir, group] of byDir) {
    let slice: Upload[] = []
    let files: OxenUploadFile[] = []
    let size = 0
    const send = async () => {
      if (files.length === 0) return
      const done = await client.uploadFiles(workspaceId, dir, files)
      result.objects += done.files
      result.bytes += done.bytes
      p.progress.increment(files.length)
      // Journaled once the hub said it staged them, before anything else is sent.
      for (const u of slice) journal[u.path] = identity(u)
      await saveOxenState(ws.repo, p.name, state)
      slice = []
      files = []
      size = 0
    }
    for (const u of group) {
      const bytes = u.bytes ?? await ws.repo.store.get(u.blob!)
      hashes.set(u.path, xxh3_128Hex(bytes))
      slice.push(u)
      files.push({path: dir ? u.path.slice(dir.length + 1) : u.path, bytes})
      size += bytes.length
      if (size >= SLICE_BYTES) await send()
    }
    await send()
  }
  for (let i = 0; i < toRemove.length; i += 500) await client.removeFiles(workspaceId, toRemove.slice(i, i + 500))
  result.removed += removals.length

  const commit = await ws.reader.commit(id)
  const who = commit.author.name && commit.author.email ? commit.author : p.identity ?? commit.author
  p.progress.stop()
  // A branch that moved without touching our paths would take this commit on top of someone
  // else's (the hub's parent is the branch's current head): ask first, and refuse.
  const mergeable = await client.mergeability(workspaceId, branch)
  if (mergeable && (mergeable.commits.length > 0 || !mergeable.mergeable)) {
    throw new TilesyncError('REMOTE_MOVED', `hub branch ${branch} moved since ${base.slice(0, 10)}`, {hint: 'pull first'})
  }
  await client.reportAction('started', 'push_workspace')
  const landed = await client.commitWorkspace(workspaceId, branch, {message: commit.message, author: who.name, email: who.email})
  delete state.pending[branch]
  if ((landed.parent_ids?.[0] ?? '') !== base) {
    // It moved between the question and the commit (or the hub cannot be asked): the new hub
    // commit holds someone else's work too, so it is not recorded as this tilesync commit.
    await saveOxenState(ws.repo, p.name, state)
    await client.reportAction('completed', 'push_workspace')
    throw new TilesyncError('REMOTE_MOVED', `hub branch ${branch} moved during the push: hub commit ${landed.id.slice(0, 10)} was made on top of ${String(landed.parent_ids?.[0] ?? '').slice(0, 10)}, not ${base.slice(0, 10)}`, {hint: 'pull first'})
  }
  await client.completeCommit(landed.id, {name: branch, commit_id: landed.id})
  await client.reportAction('completed', 'push_workspace')
  applyToView(p.view, uploads, removals, hashes)
  state.commits[landed.id] = id
  state.branches[branch] = {oxen: landed.id, tilesync: id}
  await saveOxenState(ws.repo, p.name, state)
  return landed.id
}
