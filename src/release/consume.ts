import * as path from 'node:path'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {clone, type CloneResult} from '../ops/clone.js'
import {pull, type PullResult} from '../ops/pull.js'
import {defaultRemoteName, openRemote, remoteConfig} from '../ops/remotes.js'
import type {Workspace} from '../workspace/workspace.js'
import type {RemoteConfig} from '../repo/config.js'
import {openTransport, storedRemoteUrl} from '../remote/registry.js'
import type {Transport} from '../remote/transport.js'
import {remoteTreeReader} from './commit-contents.js'
import {manifestRemoteConfig, readManifestFile, type ReleaseManifest} from './manifest.js'
import {readReleaseAtHead} from './publish.js'
import {assertObjectStoreRemote, RunRemotes} from './remotes.js'

/**
 * Checks, before anything is written, that the remote has the release's commit and that it
 * holds the tile and row counts the manifest states (three small objects, each verified by
 * hash). The commit id pins everything else: every object below it is verified as it arrives.
 */
async function checkReleaseOn(remote: Transport, m: ReleaseManifest, where: string): Promise<void> {
  if (!remote.objects) throw new TilesyncError('REMOTE_UNSUPPORTED', `${where} does not keep objects a release can be checked against`)
  const reader = remoteTreeReader(remote.objects)
  let tiles = 0
  let rows = 0
  try {
    const {snapshot, tables} = await reader.tablesOf(m.commit)
    for (const t of tables.values()) rows += t.rowCount
    tiles = snapshot.tileTable ? tables.get(snapshot.tileTable)?.rowCount ?? 0 : 0
  } catch (error) {
    if (!isTilesyncError(error, 'OBJECT_MISSING')) throw error
    // A remote a prune has cut: the release was there and its objects were removed.
    if ((await remote.objects.shallowRoots()).size > 0) {
      throw new TilesyncError('OBJECT_MISSING', `release "${m.name}" (commit ${m.commit.slice(0, 10)}) was pruned from ${where}: \`tilesync prune\` removed its objects`, {
        hint: 'clone a release that is still there, which `tilesync release list --production REMOTE` marks, or clone this one from a remote that still has it, such as the staging URL the manifest names',
        data: {commit: m.commit, pruned: true},
      })
    }
    throw new TilesyncError('OBJECT_MISSING', `release "${m.name}" (commit ${m.commit.slice(0, 10)}) is not on ${where}`, {
      hint: 'it is there once `tilesync release publish` has run; or give the staging URL the manifest names',
      data: {commit: m.commit},
    })
  }
  if (tiles !== m.tiles || rows !== m.rows) {
    throw new TilesyncError('BAD_ARGUMENT', `release "${m.name}" does not match commit ${m.commit.slice(0, 10)}: the manifest says ${m.tiles} tiles and ${m.rows} rows, the commit has ${tiles} and ${rows}`, {
      hint: 'the manifest was edited by hand: use the one from the reviewed git commit',
    })
  }
}

export interface CloneReleaseOptions {
  /** Path of a tilesync.release.json. */
  manifest: string
  /** Where to clone from (e.g. production); default the staging location the manifest names. */
  url?: string
  dir?: string
  db?: string
  remote?: Omit<RemoteConfig, 'url'>
  dryRun?: boolean
}

/** A new directory holding exactly the release's commit, checked against its manifest. */
export async function cloneRelease(options: CloneReleaseOptions): Promise<CloneResult & {release: ReleaseManifest}> {
  const m = await readManifestFile(options.manifest)
  const extra = Object.fromEntries(Object.entries(options.remote ?? {}).filter(([, v]) => v !== undefined))
  const config: RemoteConfig = options.url ? {url: options.url, ...extra} : {...manifestRemoteConfig(m), ...extra}
  assertObjectStoreRemote(config, config.url)
  const url = storedRemoteUrl(config.url, path.dirname(path.resolve(options.manifest)))
  const remote = await openTransport({...config, url}, {name: 'origin'})
  try {
    await checkReleaseOn(remote, m, config.url)
  } finally {
    await remote.close()
  }
  const dir = options.dir ?? (m.name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+/, '') || 'tiles')
  const {endpoint, region, host} = config
  const result = await clone({
    url, dir, db: options.db, branch: m.branch, commit: m.commit, dryRun: options.dryRun,
    remote: Object.fromEntries(Object.entries({endpoint, region, host}).filter(([, v]) => v !== undefined)),
  })
  if (result.head !== m.commit) throw new TilesyncError('OBJECT_CORRUPT', `clone ended at ${result.head.slice(0, 10)}, not at the release's ${m.commit.slice(0, 10)}`)
  return {...result, release: m}
}

export interface PullReleaseOptions {
  /** A manifest file; default the manifest committed at HEAD of the surrounding git repository. */
  manifest?: string
  /** Remote to pull from; default origin (or the only remote), else the one at the manifest's location. */
  remote?: string
  dryRun?: boolean
  cwd?: string
}

/** Brings the current branch to exactly the release's commit (fast-forward only). */
export async function pullRelease(ws: Workspace, options: PullReleaseOptions = {}): Promise<PullResult & {release: ReleaseManifest}> {
  const cwd = path.resolve(options.cwd ?? process.cwd())
  const m = options.manifest ? await readManifestFile(path.resolve(cwd, options.manifest)) : (await readReleaseAtHead(cwd)).manifest
  let name = options.remote
  if (!name) {
    try {
      name = defaultRemoteName(ws.repo)
    } catch (error) {
      if (!isTilesyncError(error, 'REMOTE_UNKNOWN')) throw error
      // Several remotes and none is origin: the one at the manifest's location, if configured.
      name = new RunRemotes(ws.repo, cwd).find(manifestRemoteConfig(m)) ?? undefined
      if (!name) throw error
    }
  }
  assertObjectStoreRemote(remoteConfig(ws.repo, name), `remote "${name}"`)
  const remote = await openRemote(ws.repo, name)
  try {
    await checkReleaseOn(remote, m, `remote "${name}"`)
  } finally {
    await remote.close()
  }
  const result = await pull(ws, {remote: name, branch: m.branch, commit: m.commit, dryRun: options.dryRun})
  return {...result, release: m}
}
