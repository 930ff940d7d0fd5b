import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
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

/** published: production moved forward to the commit; rolled-back: a rollback manifest moved it back to an older one. */
export type PublishOutcome = 'published' | 'up-to-date' | 'rolled-back'

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
export async function workspaceFor(cwd: string): Promise<{ws: Workspace; dispose: () => Promise<void>}> {
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
 * Idempotent: when production's branch is already at the commit nothing is read from staging
 * and nothing is written. A manifest naming a commit older than what production serves (its
 * history contains it) is refused with RELEASE_SUPERSEDED unless it is a rollback manifest
 * (`release rollback`) prepared against exactly what production serves: then production's
 * branch moves back to that commit, by compare-and-swap. A manifest naming a commit staging
 * does not have (or has incompletely) fails before production is touched.
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
      return {from: result.previous, to: commit, objects: result.objects, bytes: result.bytes, dryRun: result.dryRun}
    })
    return result!
  } finally {
    remotes.release()
    await dispose()
  }
}

async function publishWith(ws: Workspace, manifest: ReleaseManifest, source: PublishResult['source'], staging: string, production: string, dryRun: boolean): Promise<PublishResult> {
  const {branch, commit, rollback} = manifest
  const prod = await openRemote(ws.repo, production).catch(ownEndpointFlag('production', production, '--endpoint'))
  const stage = await openRemote(ws.repo, staging).catch(async (error: unknown) => {
    await prod.close()
    return ownEndpointFlag('staging', staging, '--staging-endpoint')(error)
  })
  const base: PublishResult = {
    manifest, source, staging, production, branch, commit, previous: null, outcome: 'up-to-date',
    commits: 0, objects: 0, bytes: 0, copiedServerSide: false, dryRun, verified: null,
  }
  try {
    const current = await prod.readBranch(branch)
    base.previous = current?.commit ?? null
    if (current?.commit === commit) return base
    const where = `${production}/${branch}`

    // An older commit goes live only through a rollback manifest prepared against exactly
    // what production serves; anything else is refused, never reported as "nothing changed".
    if (rollback) {
      if (current?.commit !== rollback.from) {
        throw new TilesyncError('REMOTE_MOVED', `rollback "${manifest.name}" was prepared against ${where} at ${rollback.from.slice(0, 10)}, but it is at ${current?.commit ? current.commit.slice(0, 10) : '(no branch)'} now; nothing was published`, {
          hint: `prepare the rollback again against what production serves: \`tilesync release rollback --to ${commit.slice(0, 10)}\``,
          data: {branch, previous: current?.commit ?? null, expected: rollback.from, commit},
        })
      }
    } else if (current?.commit && await isOlderThan(objectsOf(prod, production), objectsOf(stage, staging), current.commit, commit)) {
      throw new TilesyncError('RELEASE_SUPERSEDED', `release "${manifest.name}" (commit ${commit.slice(0, 10)}) is older than what ${where} serves (${current.commit.slice(0, 10)}, whose history contains it); nothing was published`, {
        hint: `to put it live again, prepare a rollback and merge it: \`tilesync release rollback --to ${commit.slice(0, 10)}\``,
        data: {branch, previous: current.commit, commit},
      })
    }

    const stagingWhere = `staging remote "${staging}" (${ws.repo.config.remotes[staging].url})`
    const contents = await verifyCommitOnRemote(objectsOf(stage, staging), staging, commit, stagingWhere).catch((error: unknown) => {
      if (!isTilesyncError(error, 'OBJECT_MISSING') && !isTilesyncError(error, 'OBJECT_CORRUPT')) throw error
      throw new TilesyncError(error.code, `release "${manifest.name}" cannot be published: ${error.message}; ${where} was not changed`, {hint: error.hint, data: error.data, cause: error})
    })
    const got = {tiles: contents.tiles, rows: contents.rows, blobs: contents.blobs.size, bytes: contents.bytes}
    const mismatch = (['tiles', 'rows', 'blobs', 'bytes'] as const).filter((k) => got[k] !== manifest[k])
    if (mismatch.length > 0) {
      throw new TilesyncError('BAD_ARGUMENT', `release "${manifest.name}" does not describe commit ${commit.slice(0, 10)}: the manifest says ${mismatch.map((k) => `${k} ${manifest[k]}`).join(', ')}, the commit has ${mismatch.map((k) => `${k} ${got[k]}`).join(', ')}; ${where} was not changed`, {
        hint: 'the manifest was edited by hand: prepare the release again with `tilesync release prepare`',
      })
    }
    // Only now, with every object of the commit read or listed there, is it "verified on staging".
    base.verified = got

    try {
      const p = await promote(ws, {from: staging, to: production, branch, commit, dryRun, force: Boolean(rollback), expectedPrevious: rollback?.from})
      const outcome: PublishOutcome = p.upToDate ? 'up-to-date' : rollback ? 'rolled-back' : 'published'
      return {...base, outcome, commits: p.commits, objects: p.objects, bytes: p.bytes, copiedServerSide: p.copiedServerSide}
    } catch (error) {
      if (!isTilesyncError(error, 'REMOTE_MOVED')) throw error
      const now = await prod.readBranch(branch)
      throw new TilesyncError('REMOTE_MOVED', `${where} (${now?.commit ? now.commit.slice(0, 10) : 'deleted'}) has commits release "${manifest.name}" (${commit.slice(0, 10)}) does not contain; nothing was published`, {
        hint: `merge ${where} into the release branch, push it to ${staging}, and prepare the release again`,
        data: {branch, previous: now?.commit ?? null, commit},
      })
    }
  } finally {
    await prod.close()
    await stage.close()
  }
}

/**
 * A bucket given without an endpoint: the hint names this command's own flag (the generic
 * one speaks of \`remote add --endpoint\`, which a CI run of publish has no use for).
 */
function ownEndpointFlag(role: string, name: string, flag: string): (error: unknown) => never {
  return (error: unknown) => {
    if (isTilesyncError(error, 'BAD_CONFIG') && /has no endpoint/.test(error.message)) {
      throw new TilesyncError('BAD_CONFIG', `${role} remote "${name}" (${error.message.replace(/^remote /, '').replace(/ has no endpoint$/, '')}) has no endpoint`, {
        hint: `pass the S3-compatible endpoint to this command with \`${flag} URL\`, or set AWS_ENDPOINT_URL_S3; for AWS S3 itself, set AWS_REGION`,
        data: {remote: name}, cause: error,
      })
    }
    throw error
  }
}

/** Releases go through remotes that keep objects (assertObjectStoreRemote checked the kind). */
function objectsOf(remote: Transport, name: string): RemoteObjects {
  if (!remote.objects) throw new TilesyncError('REMOTE_UNSUPPORTED', `remote "${name}" (${remote.location}) does not keep objects a release can be checked against`)
  return remote.objects
}

/**
 * Whether production's tip already contains `commit` (the release is older than what it
 * serves), in few requests whatever the length of the history: a commit production does not
 * hold is not in its history (one read); one whose history on staging reaches the tip is a
 * step forward (a walk over the new commits only); only then is production's history walked.
 */
async function isOlderThan(prod: RemoteObjects, stage: RemoteObjects, tip: string, commit: string): Promise<boolean> {
  if ((await prod.readRaw(commit)) === null) return false
  if (await containsCommit(stage, commit, tip)) return false
  return containsCommit(prod, tip, commit)
}

/**
 * Whether `commit` is in the history of `tip` on a remote. History a prune cut off (a
 * missing parent) ends the walk there rather than failing.
 */
export async function containsCommit(remote: RemoteObjects, tip: string, commit: string): Promise<boolean> {
  const reader = remoteTreeReader(remote)
  const seen = new Set<string>()
  const queue = [tip]
  while (queue.length > 0) {
    const id = queue.shift()!
    if (id === commit) return true
    if (seen.has(id)) continue
    seen.add(id)
    try {
      queue.push(...(await reader.commit(id)).parents)
    } catch (error) {
      if (!isTilesyncError(error, 'OBJECT_MISSING')) throw error
    }
  }
  return false
}
