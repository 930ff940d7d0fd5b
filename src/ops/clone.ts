import {existsSync} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import type {RemoteConfig} from '../repo/config.js'
import {Repository} from '../repo/repository.js'
import {openBackend} from '../remote/open-backend.js'
import {RemoteStore} from '../remote/remote-store.js'
import type {OxenTuning} from '../remote/oxen/oxen-sync.js'
import {parseRemoteUrl} from '../remote/remote-url.js'
import {downloadHistory, transferConcurrency} from '../remote/transfer.js'
import {createProgress} from '../util/progress.js'
import {DEFAULT_DB} from './init.js'
import {appendSyncLog} from './sync-log.js'
import {Workspace} from '../workspace/workspace.js'
import {writeNewDatabase} from './write-new-database.js'
import type {TreeReader} from '../snapshot/tree-reader.js'

export interface CloneOptions {
  url: string
  dir?: string
  db?: string
  branch?: string
  /**
   * Check out exactly this commit (a release) instead of the branch tip: its history is
   * downloaded and verified, and the local branch (`branch`, default the remote's) starts there.
   */
  commit?: string
  dryRun?: boolean
  /** Copy objects from a directory remote instead of hard-linking them (git's --no-hardlinks). */
  noHardLinks?: boolean
  remote?: Omit<RemoteConfig, 'url'>
  oxen?: OxenTuning
}

export interface CloneResult {
  root: string
  database: string
  branch: string
  head: string
  commits: number
  objects: number
  bytes: number
  rows: number
  dryRun: boolean
}

export function defaultCloneDir(url: string): string {
  const loc = parseRemoteUrl(url)
  const base = loc.kind === 'directory' ? path.basename(loc.path) : loc.kind === 's3' ? (loc.prefix.split('/').pop() || loc.bucket) : loc.repo
  return base.replace(/\.tilesync$/, '') || 'tiles'
}

/**
 * A fresh machine gets the history and the database back: the objects are fetched and
 * verified, then the database is built in a temp file and renamed into place, so an
 * interrupted clone never leaves a half-written database behind.
 */
export async function clone(options: CloneOptions): Promise<CloneResult> {
  if (parseRemoteUrl(options.url).kind === 'oxen') {
    if (options.commit) throw new TilesyncError('REMOTE_UNSUPPORTED', 'cloning a pinned commit (a release) is not supported from oxen remotes', {hint: 'clone the release from the bucket or directory it was published to'})
    return (await import('../remote/oxen/oxen-sync.js')).cloneOxen(options)
  }
  const root = path.resolve(options.dir ?? defaultCloneDir(options.url))
  if (existsSync(path.join(root, '.tilesync'))) {
    throw new TilesyncError('DESTINATION_EXISTS', `${root} already holds a tilesync repository`, {hint: 'clone into a new directory'})
  }
  const loc = parseRemoteUrl(options.url)
  const remoteConfig: RemoteConfig = {url: loc.kind === 'directory' ? loc.path : options.url, ...options.remote}
  const backend = await openBackend(remoteConfig)
  const remote = new RemoteStore(backend, 'origin')
  const branches = await remote.listBranches()
  if (branches.length === 0) throw new TilesyncError('REMOTE_EMPTY', `${options.url} has no branches to clone`, {hint: 'push to it first'})
  const meta = (await remote.readMeta()) ?? {}
  const wanted = options.branch ?? (typeof meta.defaultBranch === 'string' ? meta.defaultBranch : undefined)
  const branch = branches.find((b) => b.name === wanted) ?? branches.find((b) => b.name === 'main') ?? branches[0]
  if (options.branch && branch.name !== options.branch && !options.commit) {
    throw new TilesyncError('REF_MISSING', `${options.url} has no branch "${options.branch}"`, {hint: `branches: ${branches.map((b) => b.name).join(', ')}`})
  }
  const branchName = options.commit ? options.branch ?? branch.name : branch.name
  const tip = options.commit ?? branch.id
  const database = options.db ?? (typeof meta.database === 'string' && !path.isAbsolute(meta.database) && !meta.database.includes('..') ? meta.database : DEFAULT_DB)
  const dbPath = path.resolve(root, database)
  if (existsSync(dbPath)) {
    throw new TilesyncError('DESTINATION_EXISTS', `${dbPath} already exists`, {hint: 'clone into an empty directory or pass --db with a new path'})
  }
  if (options.dryRun) {
    const tmp = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'tilesync-dry-'))
    try {
      const probe = await Repository.create(tmp, {version: 1, database: 'x.db', tileTable: 'quadrants', remotes: {}})
      const {stats, commits} = await downloadHistory(probe.store, remote, tip, {concurrency: transferConcurrency(), dryRun: true})
      return {root, database, branch: branchName, head: tip, commits: commits.length, objects: stats.objects, bytes: stats.bytes, rows: 0, dryRun: true}
    } finally {
      await fs.rm(tmp, {recursive: true, force: true})
    }
  }
  // A failed clone removes what it created, so that it can simply be run again.
  const createdRoot = !existsSync(root)
  const createdDbDir = topmostMissing(root, path.dirname(dbPath))
  await fs.mkdir(root, {recursive: true})
  try {
    const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
    const arr = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined)
    const repo = await Repository.create(root, {
      version: 1, database: database.split(path.sep).join('/'), tileTable: str(meta.tileTable) ?? 'quadrants',
      ...(arr(meta.keyColumns) ? {keyColumns: arr(meta.keyColumns)} : {}),
      ...(arr(meta.imageColumns) ? {imageColumns: arr(meta.imageColumns)} : {}),
      ...(arr(meta.xyColumns)?.length === 2 ? {xyColumns: arr(meta.xyColumns) as [string, string]} : {}),
      remotes: {origin: remoteConfig},
    })
    const start = Date.now()
    const ws = new Workspace(repo)
    await fs.mkdir(path.dirname(dbPath), {recursive: true})
    const tmpDb = `${dbPath}.tilesync-clone.tmp`
    await fs.rm(tmpDb, {force: true})
    let rows = 0
    // The database is written while the blobs are still arriving: downloading, verifying and
    // inserting overlap. It goes to a temp file, renamed into place only when complete.
    const buildDatabase = async (reader: TreeReader): Promise<void> => {
      const {commit, snapshot, tables, tableIds} = await reader.tablesOf(tip)
      rows = await writeNewDatabase(tmpDb, {snapshotId: commit.tree, snapshot, tables, tableIds}, reader, ws)
    }
    let stats, commits
    try {
      const progress = await createProgress('objects')
      ;({stats, commits} = await repo.store.withTrustWindow(() =>
        downloadHistory(repo.store, remote, tip, {concurrency: transferConcurrency(), progress, alongside: buildDatabase, hardLinks: !options.noHardLinks})))
      await fs.rename(tmpDb, dbPath)
    } catch (error) {
      await fs.rm(tmpDb, {force: true})
      throw error
    }
    await repo.refs.update(`refs/heads/${branchName}`, tip, `clone: from ${options.url}`, null)
    // The remote-tracking ref names what the remote's branch holds; of a pinned commit's
    // clone only when the branch is there (its later history was not downloaded).
    if (branches.find((b) => b.name === branchName)?.id === tip) await repo.refs.update(`refs/remotes/origin/${branchName}`, tip, `clone: from ${options.url}`)
    await repo.refs.setHead({kind: 'branch', ref: `refs/heads/${branchName}`, branch: branchName}, `clone: from ${options.url}`)
    await appendSyncLog(repo, {time: new Date(start).toISOString(), op: 'clone', remote: 'origin', branch: branchName, from: null, to: tip, objects: stats.objects, bytes: stats.bytes, durationMs: Date.now() - start, result: 'ok'})
    return {root, database: repo.config.database, branch: branchName, head: tip, commits: commits.length, objects: stats.objects, bytes: stats.bytes, rows, dryRun: false}
  } catch (error) {
    await fs.rm(createdRoot ? root : path.join(root, '.tilesync'), {recursive: true, force: true}).catch(() => undefined)
    if (!createdRoot && createdDbDir) await fs.rm(createdDbDir, {recursive: true, force: true}).catch(() => undefined)
    throw error
  }
}

/** The outermost directory of `dir` below `root` that does not exist yet (null: all exist). */
function topmostMissing(root: string, dir: string): string | null {
  let missing: string | null = null
  for (let d = dir; d.startsWith(root + path.sep); d = path.dirname(d)) if (!existsSync(d)) missing = d
  return missing
}
