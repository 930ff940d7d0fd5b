import * as fs from 'node:fs'
import * as path from 'node:path'

import git from 'isomorphic-git'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {openRemote} from '../ops/remotes.js'
import type {RemoteConfig} from '../repo/config.js'
import {Repository} from '../repo/repository.js'
import {findGitRoot, gitPath} from './git.js'
import {parseManifest, type ReleaseManifest} from './manifest.js'
import {manifestLocation} from './prepare.js'
import {workspaceFor} from './publish.js'
import {assertObjectStoreRemote, RunRemotes} from './remotes.js'

/**
 * live: production's branch is at its commit; available: production still holds the commit
 * (a later release contains it, or it was never the tip); pruned: production lacks it and a
 * prune has cut history there; absent: production lacks it and was never pruned (never
 * published); unknown: no production remote was given.
 */
export type ReleaseState = 'live' | 'available' | 'pruned' | 'absent' | 'unknown'

export interface ReleaseEntry {
  /** The git commit that wrote this manifest, and when. */
  gitCommit: string
  gitDate: string
  gitMessage: string
  manifest: ReleaseManifest
  state: ReleaseState
}

export interface ReleaseListResult {
  gitRoot: string
  path: string
  production: string | null
  branch: string | null
  /** Where production's branch is (null: no such branch, or no production given). */
  productionCommit: string | null
  /** Newest first: every version of the manifest in the history of git HEAD. */
  releases: ReleaseEntry[]
}

export interface ReleaseListOptions {
  /** Production remote (name or URL); default the remote named "production" when one is configured. */
  production?: string
  productionConfig?: Omit<RemoteConfig, 'url'>
  manifest?: string
  cwd?: string
}

/**
 * Every release in the git history of the manifest (each commit that changed it, newest
 * first), and for each what production holds of it. Reads git and, with a production remote,
 * one branch and one object per release (plus the shallow list); writes nothing.
 */
export async function listReleases(options: ReleaseListOptions = {}): Promise<ReleaseListResult> {
  const cwd = path.resolve(options.cwd ?? process.cwd())
  const gitRoot = await findGitRoot(cwd)
  const tilesyncRoot = options.manifest ? null : await Repository.find(cwd).then((r) => r.root, () => null)
  const rel = gitPath(gitRoot, options.manifest ? path.resolve(cwd, options.manifest) : manifestLocation(gitRoot, tilesyncRoot, cwd))
  const releases = await manifestHistory(gitRoot, rel)
  const result: ReleaseListResult = {gitRoot, path: rel, production: null, branch: releases[0]?.manifest.branch ?? null, productionCommit: null, releases}
  const {ws, dispose} = await workspaceFor(cwd)
  const remotes = new RunRemotes(ws.repo, cwd)
  try {
    const given = options.production ?? (ws.repo.config.remotes.production ? 'production' : undefined)
    if (!given || releases.length === 0) return result
    const production = remotes.resolve(given, options.productionConfig ?? {}, 'production')
    assertObjectStoreRemote(ws.repo.config.remotes[production], `production remote "${production}"`)
    result.production = production
    const remote = await openRemote(ws.repo, production)
    try {
      const objects = remote.objects
      if (!objects) throw new TilesyncError('REMOTE_UNSUPPORTED', `production remote "${production}" does not keep objects`)
      const tip = await remote.readBranch(result.branch!)
      result.productionCommit = tip?.commit ?? null
      const pruned = (await objects.shallowRoots()).size > 0
      const held = new Map<string, boolean>()
      for (const r of releases) {
        const id = r.manifest.commit
        if (!held.has(id)) held.set(id, (await objects.readRaw(id)) !== null)
        if (tip?.commit === id && r.manifest.branch === result.branch) r.state = 'live'
        else r.state = held.get(id) ? 'available' : pruned ? 'pruned' : 'absent'
      }
    } finally {
      await remote.close()
    }
    return result
  } finally {
    remotes.release()
    await dispose()
  }
}

/** Each version of the manifest in the history of HEAD, newest first (one entry per distinct manifest). */
async function manifestHistory(gitRoot: string, rel: string): Promise<ReleaseEntry[]> {
  let commits: Awaited<ReturnType<typeof git.log>>
  try {
    commits = await git.log({fs, dir: gitRoot, ref: 'HEAD', filepath: rel})
  } catch (error) {
    const name = (error as {code?: string}).code ?? (error as Error).name
    if (name === 'NotFoundError') return []
    throw error
  }
  const out: ReleaseEntry[] = []
  const seen = new Set<string>()
  for (const c of commits) {
    let text: string
    try {
      text = Buffer.from((await git.readBlob({fs, dir: gitRoot, oid: c.oid, filepath: rel})).blob).toString('utf8')
    } catch {
      continue // the file was deleted in this commit
    }
    let manifest: ReleaseManifest
    try {
      manifest = parseManifest(text, `${rel} at git ${c.oid.slice(0, 10)}`)
    } catch (error) {
      if (isTilesyncError(error, 'BAD_ARGUMENT')) continue
      throw error
    }
    // A merge brings the release branch's manifest in unchanged: one entry per manifest.
    const key = `${manifest.commit} ${manifest.createdAt}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push({gitCommit: c.oid, gitDate: new Date(c.commit.committer.timestamp * 1000).toISOString(), gitMessage: c.commit.message.split('\n')[0], manifest, state: 'unknown'})
  }
  return out
}

export interface ReleaseStatusResult extends ReleaseListResult {
  /** The release committed at git HEAD (what the next publish puts live). */
  head: ReleaseEntry | null
  /** The release production serves (matched by commit), when it is one of the list. */
  serving: ReleaseEntry | null
  /** in-sync: production serves HEAD's release; pending: HEAD's release is not live yet; unknown: no production given. */
  status: 'in-sync' | 'pending' | 'unknown' | 'no-release'
}

export async function releaseStatus(options: ReleaseListOptions = {}): Promise<ReleaseStatusResult> {
  const list = await listReleases(options)
  const head = list.releases[0] ?? null
  const serving = list.productionCommit ? list.releases.find((r) => r.manifest.commit === list.productionCommit) ?? null : null
  const status = !head ? 'no-release' : !list.production ? 'unknown' : head.state === 'live' ? 'in-sync' : 'pending'
  return {...list, head, serving, status}
}
