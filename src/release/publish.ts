import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {isAncestor} from '../history/graph.js'
import {promote} from '../ops/promote.js'
import {openRemote} from '../ops/remotes.js'
import {recordSync} from '../ops/sync-log.js'
import {Workspace} from '../workspace/workspace.js'
import type {RemoteConfig} from '../repo/config.js'
import {Repository} from '../repo/repository.js'
import type {RemoteObjects, Transport} from '../remote/transport.js'
import {remoteTreeReader, verifyCommitOnRemote} from './commit-contents.js'
import {findGitRoot, gitPath, readFileAtHead} from './git.js'
import {manifestRemoteConfig, parseManifest, type ReleaseManifest} from './manifest.js'
import {manifestLocation} from './prepare.js'
import {assertObjectStoreRemote, RunRemotes} from './remotes.js'

export interface PublishOptions {
  /** Production remote: a configured name, or a URL / path. */
  production: string
  /** Endpoint / region when `production` is an s3:// URL. */
  productionConfig?: Omit<RemoteConfig, 'url'>
  /** Staging remote (name or URL); default the one the manifest names. */
  staging?: string
  stagingConfig?: Omit<RemoteConfig, 'url'>
  /** Manifest path (as committed at HEAD); default tilesync.release.json beside `.tilesync/` or in the working directory. */
  manifest?: string
  cwd?: string
  dryRun?: boolean
}

export type PublishOutcome = 'published' | 'up-to-date' | 'already-contained'

export interface PublishResult {
  manifest: ReleaseManifest
  /** Where the manifest was read: its path in the git repository and the git commit (HEAD). */
  source: {gitRoot: string; path: string; gitCommit: string}
  staging: string
  production: string
  branch: string
  commit: string
  /** Where production's branch was before (null: it did not exist). */
  previous: string | null
  outcome: PublishOutcome
  commits: number
  objects: number
  bytes: number
  copiedServerSide: boolean
  dryRun: boolean
  /** Set when the commit was checked on staging (skipped when production already had it). */
  verified: {tiles: number; rows: number; blobs: number; bytes: number} | null
}

/** The manifest committed at HEAD of the git repository around `cwd`. */
export async function readReleaseAtHead(cwd: string, manifest?: string): Promise<{manifest: ReleaseManifest; source: PublishResult['source']}> {
  const gitRoot = await findGitRoot(cwd)
  let tilesyncRoot: string | null = null
  if (!manifest) tilesyncRoot = await Repository.find(cwd).then((r) => r.root, () => null)
  const file = manifest ? path.resolve(cwd, manifest) : manifestLocation(gitRoot, tilesyncRoot, cwd)
  const rel = gitPath(gitRoot, file)
  const {text, commit} = await readFileAtHead(gitRoot, rel)
  return {manifest: parseManifest(text, `${rel} at git ${commit.slice(0, 10)}`), source: {gitRoot, path: rel, gitCommit: commit}}
}

/**
 * The tilesync repository to work in: the one around `cwd`, or (in CI, where the data is not
 * checked out) a scratch one in a temp directory, removed afterwards, that holds only remotes.
 */
async function workspaceFor(cwd: string): Promise<{ws: Workspace; dispose: () => Promise<void>}> {
  try {
    return {ws: await Workspace.open(cwd), dispose: async () => undefined}
  } catch (error) {
    if (!isTilesyncError(error, 'NOT_A_REPO')) throw error
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tilesync-publish-'))
  const repo = await Repository.create(dir, {version: 1, database: 'none.db', tileTable: 'quadrants', remotes: {}})
  return {ws: new Workspace(repo), dispose: () => fs.rm(dir, {recursive: true, force: true})}
}

/**
 * Second half of a reviewed release, run after the manifest's branch was merged (by CI):
 * reads the manifest at git HEAD, checks that exact commit is complete on staging and is what
 * the manifest says, promotes it to production (server-side copy between buckets of one
 * account), and moves production's branch with compare-and-swap.
 *
 * Idempotent: when production's branch is already at the commit, or already contains it (a
 * later release went out), nothing is read from staging and nothing is written. A manifest
 * naming a commit staging does not have (or has incompletely) fails before production is touched.
 */
export async function publishRelease(options: PublishOptions): Promise<PublishResult> {
  const cwd = path.resolve(options.cwd ?? process.cwd())
  const {manifest, source} = await readReleaseAtHead(cwd, options.manifest)
  const {ws, dispose} = await workspaceFor(cwd)
  const remotes = new RunRemotes(ws.repo, cwd)
  try {
    const production = remotes.resolve(options.production, options.productionConfig ?? {}, 'production')
    const staging = options.staging
      ? remotes.resolve(options.staging, options.stagingConfig ?? {}, 'staging')
      : remotes.byLocation(manifestRemoteConfig(manifest), manifest.remote.name)
    if (production === staging) {
      throw new TilesyncError('BAD_ARGUMENT', `production and staging are the same remote ("${production}")`, {hint: 'publish to the production remote, not to the staging one the release was prepared on'})
    }
    assertObjectStoreRemote(ws.repo.config.remotes[production], `production remote "${production}"`)
    assertObjectStoreRemote(ws.repo.config.remotes[staging], `staging remote "${staging}"`)
    const {branch, commit} = manifest
    let result: PublishResult | undefined
    await recordSync(ws.repo, {op: 'publish', remote: production, branch}, async () => {
      result = await publishWith(ws, manifest, source, staging, production, Boolean(options.dryRun))
      return {from: result.previous, to: result.outcome === 'already-contained' ? result.previous : commit, objects: result.objects, bytes: result.bytes, dryRun: result.dryRun}
    })
    return result!
  } finally {
    remotes.release()
    await dispose()
  }
}

async function publishWith(ws: Workspace, manifest: ReleaseManifest, source: PublishResult['source'], staging: string, production: string, dryRun: boolean): Promise<PublishResult> {
  const {branch, commit} = manifest
  const prod = await openRemote(ws.repo, production)
  const stage = await openRemote(ws.repo, staging)
  const base: PublishResult = {
    manifest, source, staging, production, branch, commit, previous: null, outcome: 'up-to-date',
    commits: 0, objects: 0, bytes: 0, copiedServerSide: false, dryRun, verified: null,
  }
  try {
    const current = await prod.readBranch(branch)
    base.previous = current?.commit ?? null
    if (current?.commit === commit) return base

    const where = `staging remote "${staging}" (${ws.repo.config.remotes[staging].url})`
    const contents = await verifyCommitOnRemote(objectsOf(stage, staging), staging, commit, where).catch((error: unknown) => {
      if (!isTilesyncError(error, 'OBJECT_MISSING') && !isTilesyncError(error, 'OBJECT_CORRUPT')) throw error
      throw new TilesyncError(error.code, `release "${manifest.name}" cannot be published: ${error.message}; ${production}/${branch} was not changed`, {hint: error.hint, data: error.data, cause: error})
    })
    const got = {tiles: contents.tiles, rows: contents.rows, blobs: contents.blobs.size, bytes: contents.bytes}
    const mismatch = (['tiles', 'rows', 'blobs', 'bytes'] as const).filter((k) => got[k] !== manifest[k])
    if (mismatch.length > 0) {
      throw new TilesyncError('BAD_ARGUMENT', `release "${manifest.name}" does not describe commit ${commit.slice(0, 10)}: the manifest says ${mismatch.map((k) => `${k} ${manifest[k]}`).join(', ')}, the commit has ${mismatch.map((k) => `${k} ${got[k]}`).join(', ')}; ${production}/${branch} was not changed`, {
        hint: 'the manifest was edited by hand: prepare the release again with `tilesync release prepare`',
      })
    }
    base.verified = got

    try {
      const p = await promote(ws, {from: staging, to: production, branch, commit, dryRun})
      return {...base, outcome: p.upToDate ? 'up-to-date' : 'published', commits: p.commits, objects: p.objects, bytes: p.bytes, copiedServerSide: p.copiedServerSide}
    } catch (error) {
      if (!isTilesyncError(error, 'REMOTE_MOVED')) throw error
      // Production went past this release (a later one was published): nothing to do.
      const now = await prod.readBranch(branch)
      if (now?.commit && await containsCommit(objectsOf(prod, production), now.commit, commit)) return {...base, previous: now.commit, outcome: 'already-contained'}
      throw new TilesyncError('REMOTE_MOVED', `${production}/${branch} (${now?.commit ? now.commit.slice(0, 10) : 'deleted'}) has commits release "${manifest.name}" (${commit.slice(0, 10)}) does not contain; nothing was published`, {
        hint: `merge ${production}/${branch} into the release branch, push it to ${staging}, and prepare the release again`,
        data: {branch, previous: now?.commit ?? null, commit},
      })
    }
  } finally {
    await prod.close()
    await stage.close()
  }
}

/** Releases go through remotes that keep objects (assertObjectStoreRemote checked the kind). */
function objectsOf(remote: Transport, name: string): RemoteObjects {
  if (!remote.objects) throw new TilesyncError('REMOTE_UNSUPPORTED', `remote "${name}" (${remote.location}) does not keep objects a release can be checked against`)
  return remote.objects
}

async function containsCommit(remote: RemoteObjects, tip: string, commit: string): Promise<boolean> {
  try {
    return await isAncestor(remoteTreeReader(remote), commit, tip)
  } catch {
    return false
  }
}
