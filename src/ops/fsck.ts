
import {existsSync} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {hashBytes, isObjectId} from '../core/hash.js'
import {databaseUsers, describeUsers} from '../db/database-users.js'
import {CORRUPT_HINT, integrityProblems} from '../db/integrity.js'
import {openDatabase, translateSqliteError} from '../db/open-database.js'
import type {Repository} from '../repo/repository.js'
import type {RemoteObjects, Transport} from '../remote/transport.js'
import {HashingPool} from '../store/hashing-pool.js'
import {type ObjectProblem, ObjectWalk, type RawSource, short} from './object-walk.js'
import {listRemotes, openRemote, storesObjects} from './remotes.js'
import {collectRoots} from './roots.js'
import type {Workspace} from '../workspace/workspace.js'

export interface FsckProblem {
  /** missing / corrupt / malformed object, a damaged ref, a ref to a non-commit, a lost parent, a damaged pack index. */
  kind: 'missing' | 'corrupt' | 'malformed' | 'bad-ref' | 'missing-parent' | 'bad-pack' | 'database'
  id?: string
  /** For bad-pack: the pack's name. */
  pack?: string
  /** A damaged object nothing refers to (repair removes it). */
  unreferenced?: boolean
  ref?: string
  /** One line: what is wrong, then what to do. */
  message: string
}

export interface FsckRef {
  name: string
  id: string | null
  /** The commit and its whole snapshot are present and sound. */
  complete: boolean
}

export interface FsckResult {
  ok: boolean
  /** "local" or the remote's name. */
  where: string
  refs: FsckRef[]
  commits: number
  objects: number
  bytes: number
  problems: FsckProblem[]
  /** Commits kept only by reflogs: not on any branch, and can be checked out again. */
  recoverable: Array<{id: string; reflog: string; message: string; time: number; complete: boolean}>
  /** Commits whose parents were cut off by a prune (history ends there by design). */
  shallow: string[]
  /** Objects present that nothing refers to (local: what gc removes; remote: what prune removes). */
  unreferenced: {objects: number; bytes: number}
  /** With --repair: objects fetched or uploaded again, corrupt files removed. */
  repaired: number
  /** A partial clone: blobs left on its origin by design (not problems), and the origin. */
  promised?: {objects: number; remote: string}
  /** Why SQLite's check of the database was left out (another process has it open). */
  databaseSkipped?: string
}

const PROBLEM_KINDS = new Set(['missing', 'corrupt', 'malformed'])
/** What a repair downloads again: damaged or missing objects, and commits missing below their child. */
const FETCHABLE = new Set([...PROBLEM_KINDS, 'missing-parent'])

/**
 * Checks a repository: every ref points at a complete commit, every object reachable from
 * a ref is present, hashes to its id and decodes as what refers to it says it is, and every
 * parent of every commit is there (except below shallow roots). Reflog-only commits are
 * checked too and listed as recoverable. Every object is read once.
 */
export async function fsckLocal(ws: Workspace, options: {repair?: boolean; database?: boolean} = {}): Promise<FsckResult> {
  // SQLite's check reads the whole file in one statement: a pipeline writing the database would
  // wait for all of it (rollback-journal mode), so beside one it is left out unless asked for.
  const users = options.database ? [] : databaseUsers(ws.repo.databasePath)
  const skipped = users.length ? `SQLite's check of the database was skipped: it is open in ${describeUsers(users)}, and the check reads the whole file in one read transaction, which that program's writes would wait for; run \`tilesync fsck\` when it is idle, or \`tilesync fsck --database\` to check it now` : undefined
  const result = await fsckLocalWith(ws, options, users.length ? null : checkDatabase(ws))
  return skipped ? {...result, databaseSkipped: skipped} : result
}

async function fsckLocalWith(ws: Workspace, options: {repair?: boolean}, database: FsckProblem | null): Promise<FsckResult> {
  const withDatabase = (r: FsckResult): FsckResult => (database ? {...r, ok: false, problems: [...r.problems, database]} : r)
  let result = await checkLocal(ws.repo)
  if (!options.repair || result.ok) return withDatabase(result)
  let repaired = 0
  // Each pass brings back what the last one found; a missing tree node reveals its children only
  // once it is back, so repeat while progress is made.
  for (let pass = 0; pass < 64 && !result.ok; pass++) {
    const n = await repairLocal(ws.repo, result)
    repaired += n
    result = await checkLocal(ws.repo)
    if (n === 0) break
  }
  // What is still wrong could not be fixed from here: say so, instead of suggesting --repair again.
  const remotes = listRemotes(ws.repo).filter((r) => storesObjects(ws.repo, r.name)).map((r) => r.name)
  const unfixable = remotes.length
    ? `no configured remote (${remotes.join(', ')}) has it: add a remote or clone that does (\`tilesync remote add NAME URL\`) and run \`tilesync fsck --repair\` again`
    : 'no remote is configured to fetch it from: `tilesync remote add NAME URL`, then `tilesync fsck --repair`'
  const problems = result.problems.map((p) => ({...p, message: p.message.replace(/: (run `tilesync fsck --repair`|restore it from a copy)[^]*$/, `: ${unfixable}`)}))
  return withDatabase({...result, problems, repaired})
}

/**
 * The database itself, by SQLite's full check (every page, and every index against its table).
 * A damaged database is not repaired in place: the problem says how to write a sound copy.
 */
function checkDatabase(ws: Workspace): FsckProblem | null {
  const file = ws.repo.databasePath
  if (!existsSync(file)) return null
  let db
  try {
    db = openDatabase(file, {readonly: true})
  } catch (error) {
    if (isTilesyncError(error, 'DB_CORRUPT') || isTilesyncError(error, 'NOT_SQLITE')) return {kind: 'database', message: `${error.message}: ${error.hint}`}
    throw error
  }
  try {
    const problems = integrityProblems(db, false)
    return problems.length ? {kind: 'database', message: `the database ${file} is damaged (PRAGMA integrity_check: ${problems[0]}${problems.length > 1 ? `, and ${problems.length - 1} more` : ''}): ${CORRUPT_HINT}`} : null
  } catch (error) {
    const e = translateSqliteError(error, file)
    if (isTilesyncError(e, 'DB_CORRUPT')) return {kind: 'database', message: `${e.message}: ${e.hint}`}
    throw e
  } finally {
    db.close()
  }
}

async function checkLocal(repo: Repository): Promise<FsckResult> {
  const source: RawSource = {
    read: (id) => repo.store.readRaw(id),
  }
  const pool = lazyPool(repo)
  try {
    const walk = new ObjectWalk(source, pool.hash)
    walk.promisedBlobs = repo.partial !== null
    const roots = await collectRoots(repo, {baseline: false})
    const shallow = repo.shallow
    const repairHint = localRepairHint(repo)
    const problems: FsckProblem[] = []
    await repo.store.packs.reload()
    for (const [name, reason] of repo.store.packs.damaged) {
      problems.push({kind: 'bad-pack', pack: name, message: `the index of objects/pack/${name}.pack is damaged (${reason}), so its objects read as missing: run \`tilesync fsck --repair\` to rebuild it from the pack`})
    }
    const refs: FsckRef[] = []
    const tips: Array<{name: string; id: string}> = []
    for (const r of roots.refs) {
      if (r.id === null) {
        problems.push({kind: 'bad-ref', ref: r.name, message: `${refLabel(r.name)} is damaged (${r.error}): see \`tilesync reflog\` for the values it had, delete it and create it again at the right commit`})
        refs.push({name: r.name, id: null, complete: false})
        continue
      }
      tips.push({name: r.name, id: r.id})
    }
    for (const m of roots.merge) tips.push({name: m.name, id: m.id})
    const history = await walkHistory(walk, tips.map((t) => t.id), shallow)
    for (const t of tips) {
      const complete = await walk.complete(t.id)
      refs.push({name: t.name, id: t.id, complete})
    }
    // Objects first (with their own words), then what they mean for refs and history.
    for (const p of walk.problems) problems.push(objectProblem(p, repairHint))
    for (const r of refs) {
      if (r.id && !r.complete) {
        problems.push({kind: 'missing', ref: r.name, id: r.id, message: `${refLabel(r.name)} points at commit ${short(r.id)}, which is not complete (see the objects above): ${repairHint}`})
      }
    }
    for (const m of history.missingParents) {
      problems.push({kind: 'missing-parent', id: m.parent, message: `the history below commit ${short(m.child)} is missing (parent ${short(m.parent)}): ${repairHint}`})
    }

    // Reflog entries: what can still be got back, checked, but not a problem of the refs.
    const recoverable: FsckResult['recoverable'] = []
    const seen = new Set(history.commits)
    const warn: ObjectProblem[] = []
    for (const {ref, entry} of roots.reflogs) {
      for (const id of [entry.new, entry.old]) {
        if (!id || !isObjectId(id) || seen.has(id)) continue
        seen.add(id)
        const complete = await walk.complete(id, warn)
        recoverable.push({id, reflog: ref, message: entry.message, time: entry.time, complete})
      }
    }

    // Objects nothing refers to: hashed too, since a damaged one would be reused by a later commit.
    const visited = walk.visited()
    let unrefObjects = 0
    let unrefBytes = 0
    for await (const o of repo.store.list()) {
      if (visited.has(o.id)) continue
      unrefObjects++
      unrefBytes += o.size
      const bytes = await source.read(o.id)
      if (bytes === null) continue
      const actual = await pool.hash(bytes)
      if (actual !== o.id) {
        problems.push({kind: 'corrupt', id: o.id, unreferenced: true, message: `object ${short(o.id)} (not used by any commit) is corrupt: remove it with \`tilesync fsck --repair\` (a later commit could otherwise reuse it)`})
      }
    }
    return {
      ok: problems.length === 0, where: 'local', refs, commits: history.commits.size, objects: walk.objects, bytes: walk.bytes,
      problems, recoverable, shallow: [...history.shallowRoots], unreferenced: {objects: unrefObjects, bytes: unrefBytes}, repaired: 0,
      ...(repo.partial ? {promised: {objects: walk.promised, remote: repo.partial.remote}} : {}),
    }
  } finally {
    await pool.close()
  }
}

/** Hashes small objects in place and large ones on worker threads, started only when needed. */
function lazyPool(repo: Repository): {hash: (bytes: Buffer) => Promise<string>; close: () => Promise<void>} {
  let pool: HashingPool | undefined
  return {
    hash: async (bytes) => {
      if (bytes.length < 64 * 1024) return hashBytes(bytes)
      pool ??= new HashingPool(repo.store, 'hash')
      return pool.put(bytes)
    },
    close: async () => {
      await pool?.close()
    },
  }
}

function refLabel(name: string): string {
  if (name === 'HEAD') return 'HEAD'
  if (name.startsWith('refs/heads/')) return `branch ${name.slice(11)}`
  if (name.startsWith('refs/tags/')) return `tag ${name.slice(10)}`
  if (name.startsWith('refs/remotes/')) return `remote branch ${name.slice(13)}`
  if (name === 'refs/saved') return 'refs/saved (changes saved by checkout --force)'
  return name
}

function localRepairHint(repo: Repository): string {
  const remotes = listRemotes(repo).filter((r) => storesObjects(repo, r.name))
  return remotes.length
    ? `run \`tilesync fsck --repair\` to download it again from ${remotes.map((r) => r.name).join(' or ')}`
    : 'restore it from a copy that has it: `tilesync remote add NAME URL`, then `tilesync fsck --repair`'
}

function objectProblem(p: ObjectProblem, hint: string): FsckProblem {
  return {kind: p.kind, id: p.id, message: `${p.message}: ${hint}`}
}

/**
 * Walks commit history from `tips` (breadth first), checking each commit and its snapshot.
 * A parent that is absent is damage, unless its child is a shallow root.
 */
async function walkHistory(walk: ObjectWalk, tips: string[], shallow: ReadonlySet<string>): Promise<{commits: Set<string>; missingParents: Array<{child: string; parent: string}>; shallowRoots: Set<string>}> {
  const commits = new Set<string>()
  const missingParents: Array<{child: string; parent: string}> = []
  const shallowRoots = new Set<string>()
  const childOf = new Map<string, string>()
  let frontier = [...new Set(tips)]
  while (frontier.length > 0) {
    const next: string[] = []
    // A few commits at a time: their trees share most objects, which the walk reads once.
    for (let i = 0; i < frontier.length; i += 8) {
      const batch = frontier.slice(i, i + 8).filter((id) => !commits.has(id))
      for (const id of batch) commits.add(id)
      await Promise.all(batch.map(async (id) => {
        const child = childOf.get(id)
        const own: ObjectProblem[] = []
        const c = await walk.commit(id, child ? own : walk.problems)
        for (const p of own) {
          if (p.id === id && p.kind === 'missing') missingParents.push({child: child!, parent: id})
          else walk.problems.push(p)
        }
        if (!c) return
        await walk.complete(id)
        for (const parent of c.parents) {
          if (commits.has(parent)) continue
          if (shallow.has(id) && !(await walk.exists(parent))) {
            shallowRoots.add(id)
            continue
          }
          if (!childOf.has(parent)) childOf.set(parent, id)
          next.push(parent)
        }
      }))
    }
    frontier = [...new Set(next)].filter((id) => !commits.has(id))
  }
  return {commits, missingParents, shallowRoots}
}

/** Pack files whose index is gone are rebuilt after this long (younger ones may be a write still going on). */
const ORPHAN_PACK_AGE_MS = 10 * 60_000

async function repairLocal(repo: Repository, result: FsckResult): Promise<number> {
  let rebuilt = 0
  for (const p of result.problems) {
    if (p.kind !== 'bad-pack' || !p.pack) continue
    await repo.store.packs.rebuildIndex(p.pack, repo.layout.tmp)
    rebuilt++
  }
  // A pack whose index was lost (deleted, never flushed before a crash) still holds its
  // records, each checked by hash: its index is written again before anything is downloaded.
  if (result.problems.some((p) => FETCHABLE.has(p.kind))) {
    for (const file of await repo.store.packs.orphans()) {
      const st = await fs.stat(file).catch(() => null)
      if (!st || Date.now() - st.mtimeMs < ORPHAN_PACK_AGE_MS) continue
      const {kept} = await repo.store.packs.rebuildIndex(path.basename(file, '.pack'), repo.layout.tmp)
      if (kept > 0) rebuilt++
    }
  }
  // Objects a rebuilt index brings back need no download: check again first.
  if (rebuilt) return rebuilt
  const wanted = [...new Set(result.problems.filter((p) => FETCHABLE.has(p.kind) && p.id && !p.ref).map((p) => p.id!))]
  const remotes: Transport[] = []
  for (const r of listRemotes(repo)) {
    if (!storesObjects(repo, r.name)) continue
    remotes.push(await openRemote(repo, r.name))
  }
  let repaired = 0
  try {
    for (const id of wanted) {
      // A damaged file blocks its own rewrite (stores skip ids already present): remove it first.
      const problem = result.problems.find((p) => p.id === id)!
      if (problem.kind === 'corrupt' || problem.kind === 'malformed') {
        await repo.store.delete(id)
        if (problem.unreferenced) {
          repaired++
          continue
        }
      }
      for (const remote of remotes) {
        try {
          const bytes = await remote.objects!.read(id)
          await repo.store.put(bytes, id)
          repaired++
          break
        } catch (error) {
          if (isTilesyncError(error, 'OBJECT_MISSING') || isTilesyncError(error, 'OBJECT_CORRUPT')) continue
          throw error
        }
      }
    }
    await repo.store.flush()
  } finally {
    for (const r of remotes) await r.close()
  }
  return repaired
}

/**
 * The same checks on a remote: every branch points at a commit that is complete there, and
 * every object reachable from the branches (down to the shallow roots a prune left) can be
 * read back and hashes to its id. With `repair`, what is missing or damaged there is uploaded
 * again from the local store (checked by hash first).
 */
export async function fsckRemote(ws: Workspace, name: string, options: {repair?: boolean} = {}): Promise<FsckResult> {
  const remote = await openRemote(ws.repo, name)
  try {
    const objects = remote.objects
    if (!objects) {
      throw new TilesyncError('REMOTE_UNSUPPORTED', `${remote.location} is an ${remote.kind} remote, not an object store`, {
        hint: `\`tilesync fsck --remote\` checks remotes that store tilesync objects; pull from it and run \`tilesync fsck\` here`,
      })
    }
    let result = await checkRemote(ws, name, remote, objects)
    if (!options.repair || result.ok) return result
    let repaired = 0
    for (let pass = 0; pass < 8 && !result.ok; pass++) {
      const n = await repairRemote(ws, objects, result)
      repaired += n
      result = await checkRemote(ws, name, remote, objects)
      if (n === 0) break
    }
    return {...result, repaired}
  } finally {
    await remote.close()
  }
}

async function checkRemote(ws: Workspace, name: string, remote: Transport, objects: RemoteObjects): Promise<FsckResult> {
  const source: RawSource = {read: (id) => objects.readRaw(id)}
  const pool = lazyPool(ws.repo)
  try {
    const walk = new ObjectWalk(source, pool.hash)
    const problems: FsckProblem[] = []
    const hint = `run \`tilesync fsck --remote ${name} --repair\` from a clone that has it`
    const tips: Array<{name: string; id: string}> = []
    for (const branch of await objects.branchNames()) {
      try {
        const b = await remote.readBranch(branch)
        if (b?.commit) tips.push({name: branch, id: b.commit})
      } catch {
        problems.push({kind: 'bad-ref', ref: `refs/heads/${branch}`, message: `branch ${branch} on ${name} is damaged: push it again with \`tilesync push ${name} ${branch} --force\` from a good clone`})
      }
    }
    const shallow = await objects.shallowRoots()
    const history = await walkHistory(walk, tips.map((t) => t.id), shallow)
    const refs: FsckRef[] = []
    for (const t of tips) refs.push({name: `refs/heads/${t.name}`, id: t.id, complete: await walk.complete(t.id)})
    for (const p of walk.problems) problems.push({kind: p.kind, id: p.id, message: `${p.message} on ${name}: ${hint}`})
    for (const r of refs) {
      if (!r.complete) problems.push({kind: 'missing', ref: r.name, id: r.id!, message: `branch ${r.name.slice(11)} on ${name} points at commit ${short(r.id!)}, which is not complete there: ${hint}`})
    }
    const visited = walk.visited()
    let unrefObjects = 0
    let unrefBytes = 0
    for await (const o of objects.list()) {
      if (visited.has(o.id)) continue
      unrefObjects++
      unrefBytes += o.size
    }
    return {
      ok: problems.length === 0, where: name, refs, commits: history.commits.size, objects: walk.objects, bytes: walk.bytes,
      problems, recoverable: [], shallow: [...history.shallowRoots], unreferenced: {objects: unrefObjects, bytes: unrefBytes}, repaired: 0,
    }
  } finally {
    await pool.close()
  }
}

async function repairRemote(ws: Workspace, objects: RemoteObjects, result: FsckResult): Promise<number> {
  let repaired = 0
  for (const p of result.problems) {
    if (!PROBLEM_KINDS.has(p.kind) || !p.id || p.ref) continue
    let bytes: Buffer
    try {
      bytes = await ws.repo.store.get(p.id)
    } catch (error) {
      if (isTilesyncError(error, 'OBJECT_MISSING') || isTilesyncError(error, 'OBJECT_CORRUPT')) continue
      throw error
    }
    await objects.write(p.id, bytes)
    repaired++
  }
  await objects.flush()
  return repaired
}

export function fsckError(result: FsckResult): TilesyncError {
  return new TilesyncError('OBJECT_CORRUPT', `fsck found ${result.problems.length} problem(s) in ${result.where}`, {hint: result.problems[0]?.message})
}
