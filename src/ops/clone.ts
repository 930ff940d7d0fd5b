import {existsSync, rmSync} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import type {RemoteConfig} from '../repo/config.js'
import {Repository} from '../repo/repository.js'
import {defaultNameOf, openTransport, storedRemoteUrl, type TransportTuning} from '../remote/registry.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import {onInterrupt} from '../util/interrupt-cleanup.js'
import {createProgress} from '../util/progress.js'
import {Workspace} from '../workspace/workspace.js'
import {DEFAULT_DB} from './init.js'
import {appendSyncLog} from './sync-log.js'
import {writeNewDatabase} from './write-new-database.js'
import {fetchRegion, objectsOf, regionState} from './partial-clone.js'
import {writePartial} from '../repo/partial.js'
import type {BBox} from '../snapshot/tree-reader.js'

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
  /** Knobs for the remote's transport (tests, tuning). */
  transport?: TransportTuning
  /**
   * A partial clone: the whole history and every tree, but of the tip's images only those
   * of tiles inside x0,y0,x1,y1; the database holds those tiles. The rest is read from
   * origin when a command needs it (see src/ops/partial-clone.ts, .tilesync/partial.json).
   */
  bbox?: BBox
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
  /** A partial clone's region and the tip's images left on the origin (outside it). */
  partial?: {bbox: BBox; imagesInside: number; imagesOutside: number}
}

export function defaultCloneDir(url: string): string {
  return defaultNameOf(url)
}

/**
 * A fresh machine gets the history and the database back: the objects are fetched and
 * verified, then the database is built in a temp file and renamed into place, so an
 * interrupted clone never leaves a half-written database behind.
 */
export async function clone(options: CloneOptions): Promise<CloneResult> {
  const root = path.resolve(options.dir ?? defaultCloneDir(options.url))
  if (existsSync(path.join(root, '.tilesync'))) {
    throw new TilesyncError('DESTINATION_EXISTS', `${root} already holds a tilesync repository`, {hint: 'clone into a new directory'})
  }
  const remoteConfig: RemoteConfig = {url: storedRemoteUrl(options.url), ...Object.fromEntries(Object.entries(options.remote ?? {}).filter(([, v]) => v !== undefined))}
  const remote = await openTransport(remoteConfig, {name: 'origin', tuning: options.transport})
  try {
    // A partial clone reads objects by id: refused up front where the remote has no such reads.
    const objects = options.bbox ? objectsOf(remote) : undefined
    if (options.commit && !remote.fetchesCommits) {
      throw new TilesyncError('REMOTE_UNSUPPORTED', `cloning a pinned commit (a release) is not supported from ${remote.kind} remotes`, {hint: 'clone the release from the bucket or directory it was published to'})
    }
    const branches = await remote.listBranches()
    if (branches.length === 0) throw new TilesyncError('REMOTE_EMPTY', `${options.url} has no branches to clone`, {hint: 'push to it first'})
    const wanted = options.branch ?? (await remote.readMeta())?.defaultBranch
    const branch = branches.find((b) => b.name === wanted) ?? branches.find((b) => b.name === 'main') ?? branches[0]
    if (options.branch && branch.name !== options.branch && !options.commit) {
      throw new TilesyncError('REF_MISSING', `${options.url} has no branch "${options.branch}"`, {hint: `branches: ${branches.map((b) => b.name).join(', ')}`})
    }
    const branchName = options.commit ? options.branch ?? branch.name : branch.name
    const meta = (await remote.readMeta(branch)) ?? {}
    const database = options.db ?? (meta.database && !path.isAbsolute(meta.database) && !meta.database.includes('..') ? meta.database : DEFAULT_DB)
    const dbPath = path.resolve(root, database)
    if (existsSync(dbPath)) {
      throw new TilesyncError('DESTINATION_EXISTS', `${dbPath} already exists`, {hint: 'clone into an empty directory or pass --db with a new path'})
    }
    const tip = options.commit ?? branch
    if (options.dryRun) {
      // What a clone would download, counted against an empty store.
      const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tilesync-dry-'))
      try {
        const probe = new Workspace(await Repository.create(tmp, {version: 1, database: 'x.db', tileTable: 'quadrants', remotes: {}}))
        const tipId = options.commit ?? branch.commit
        if (objects && options.bbox && tipId) {
          // The commits and trees are read (into memory) to find the region's images; those are only counted.
          const region = await fetchRegion(probe, objects, tipId, options.bbox, {dryRun: true})
          return {root, database, branch: branchName, head: tipId, commits: region.commits, objects: region.objects, bytes: region.bytes, rows: 0, dryRun: true, partial: {bbox: options.bbox, imagesInside: region.blobs.inside, imagesOutside: region.blobs.outside}}
        }
        const [got] = await remote.fetch(probe, [tip], {dryRun: true})
        return {root, database, branch: branchName, head: got.commit ?? '', commits: got.commits, objects: got.objects, bytes: got.bytes, rows: 0, dryRun: true}
      } finally {
        await fs.rm(tmp, {recursive: true, force: true})
      }
    }
    // A failed clone removes what it created, so that it can simply be run again.
    const createdRoot = !existsSync(root)
    const createdDbDir = topmostMissing(root, path.dirname(dbPath))
    await fs.mkdir(root, {recursive: true})
    // Ctrl-C removes it as a failure does (the handler exits before the catch below could run).
    const forgetInterrupt = onInterrupt(() => {
      const made = [createdRoot ? root : path.join(root, '.tilesync'), ...(!createdRoot && createdDbDir ? [createdDbDir] : []), `${dbPath}.tilesync-clone.tmp`]
      const present = made.filter((p) => existsSync(p))
      for (const p of present) rmSync(p, {recursive: true, force: true})
      return present.length > 0
    })
    try {
      const repo = await Repository.create(root, {
        version: 1, database: database.split(path.sep).join('/'), tileTable: meta.tileTable ?? 'quadrants',
        ...(meta.keyColumns ? {keyColumns: meta.keyColumns} : {}),
        ...(meta.imageColumns ? {imageColumns: meta.imageColumns} : {}),
        ...(meta.xyColumns ? {xyColumns: meta.xyColumns} : {}),
        remotes: {origin: remoteConfig},
      })
      const start = Date.now()
      const ws = new Workspace(repo)
      await fs.mkdir(path.dirname(dbPath), {recursive: true})
      const tmpDb = `${dbPath}.tilesync-clone.tmp`
      await fs.rm(tmpDb, {force: true})
      let rows = 0
      // The database is written while the blobs are still arriving (where the transport can):
      // downloading, verifying and inserting overlap. It goes to a temp file, renamed into
      // place only when complete.
      const buildDatabase = async (reader: TreeReader, commitId: string): Promise<void> => {
        const {commit, snapshot, tables, tableIds} = await reader.tablesOf(commitId)
        if (snapshot.tileTable && snapshot.tileTable !== repo.config.tileTable) {
          repo.config.tileTable = snapshot.tileTable
          await repo.writeConfig()
        }
        rows = await writeNewDatabase(tmpDb, {snapshotId: commit.tree, snapshot, tables, tableIds}, reader, ws)
      }
      let got
      let partial: CloneResult['partial']
      try {
        if (objects && options.bbox) {
          const tipId = options.commit ?? branch.commit
          if (!tipId) throw new TilesyncError('REMOTE_EMPTY', `${remote.location} has no tile data on branch ${branch.name}`, {hint: 'push to it first'})
          await writePartial(repo.layout.dir, {remote: 'origin', bbox: options.bbox})
          const region = await fetchRegion(ws, objects, tipId, options.bbox)
          const state = await regionState(ws, await ws.stateOf(tipId), options.bbox)
          if (state.snapshot.tileTable && state.snapshot.tileTable !== repo.config.tileTable) {
            repo.config.tileTable = state.snapshot.tileTable
            await repo.writeConfig()
          }
          // The region's rows; the change record's baseline is the whole snapshot (regionState keeps its id).
          rows = await writeNewDatabase(tmpDb, {snapshotId: state.snapshotId, snapshot: state.snapshot, tables: state.tables, tableIds: state.tableIds}, ws.reader, ws)
          got = {commit: tipId, commits: region.commits, objects: region.objects, bytes: region.bytes}
          partial = {bbox: options.bbox, imagesInside: region.blobs.inside, imagesOutside: region.blobs.outside}
        } else {
          const progress = await createProgress('objects')
          ;[got] = await repo.store.withTrustWindow(() => remote.fetch(ws, [tip], {progress, alongside: buildDatabase, hardLinks: !options.noHardLinks}))
        }
        if (!got.commit) throw new TilesyncError('REMOTE_EMPTY', `${remote.location} has no tile data on branch ${branch.name}`, {hint: 'push to it first'})
        await fs.rename(tmpDb, dbPath)
      } catch (error) {
        await fs.rm(tmpDb, {force: true})
        throw error
      }
      const head = got.commit
      await repo.refs.update(`refs/heads/${branchName}`, head, `clone: from ${options.url}`, null)
      // The remote-tracking ref names what the remote's branch holds; of a pinned commit's
      // clone only when the branch is there (its later history was not downloaded).
      if (!options.commit || (branch.name === branchName && branch.commit === head)) await repo.refs.update(`refs/remotes/origin/${branchName}`, head, `clone: from ${options.url}`)
      await repo.refs.setHead({kind: 'branch', ref: `refs/heads/${branchName}`, branch: branchName}, `clone: from ${options.url}`)
      await appendSyncLog(repo, {time: new Date(start).toISOString(), op: 'clone', remote: 'origin', branch: branchName, from: null, to: head, objects: got.objects, bytes: got.bytes, durationMs: Date.now() - start, result: 'ok'})
      return {root, database: repo.config.database, branch: branchName, head, commits: got.commits, objects: got.objects, bytes: got.bytes, rows, dryRun: false, ...(partial ? {partial} : {})}
    } catch (error) {
      await fs.rm(createdRoot ? root : path.join(root, '.tilesync'), {recursive: true, force: true}).catch(() => undefined)
      if (!createdRoot && createdDbDir) await fs.rm(createdDbDir, {recursive: true, force: true}).catch(() => undefined)
      throw error
    } finally {
      forgetInterrupt()
    }
  } finally {
    await remote.close()
  }
}

/** The outermost directory of `dir` below `root` that does not exist yet (null: all exist). */
function topmostMissing(root: string, dir: string): string | null {
  let missing: string | null = null
  for (let d = dir; d.startsWith(root + path.sep); d = path.dirname(d)) if (!existsSync(d)) missing = d
  return missing
}
