import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import type {Repository} from '../../repo/repository.js'
import {writeFileAtomic} from '../../util/write-file-atomic.js'

/**
 * What tilesync knows about an oxen remote, kept in `.tilesync/remotes/NAME/oxen.json`:
 * which oxen commit holds which tilesync commit ('' when it holds no tile data, such as the
 * hub's "Initialized Repo" commit), the last hub commit seen per branch, and the push in
 * progress (its workspace), so an interrupted push can be resumed or recognised as landed.
 * `refs/remotes/NAME/BRANCH` holds the tilesync side of the last known hub commit.
 * Never holds credentials.
 */
export interface OxenSyncState {
  version: 1
  /** host/namespace/repo the ids belong to; a remote pointed elsewhere starts afresh. */
  location: string
  commits: Record<string, string>
  branches: Record<string, {oxen: string; tilesync: string}>
  pending: Record<string, PendingPush>
}

/**
 * The push in progress on one branch: its workspace, the hub commit it started from, the
 * tilesync commit it carries, and a journal of what was staged in the workspace (path ->
 * `b:<blob id>` or `x:<xxh3>` of the content), so a resumed push sends only what is missing
 * without listing the workspace (the hub's listing of a workspace mixes the base commit with
 * staged files; its changes list gives paths only).
 */
export interface PendingPush {
  workspace: string
  base: string
  tilesync: string
  sent?: Record<string, string>
}

/** The hub's files at one commit of a branch (path -> xxh3, size), to skip a full listing. */
export interface HubFilesCache {
  head: string
  files: Record<string, [string, number]>
}

const stateFile = (repo: Repository, remote: string) => path.join(repo.layout.remoteState(remote), 'oxen.json')
const filesFile = (repo: Repository, remote: string, branch: string) => path.join(repo.layout.remoteState(remote), 'oxen-files', `${encodeURIComponent(branch)}.json`)

export async function loadOxenState(repo: Repository, remote: string, location: string): Promise<OxenSyncState> {
  try {
    const s = JSON.parse(await fs.readFile(stateFile(repo, remote), 'utf8')) as OxenSyncState
    if (s.version === 1 && s.location === location && s.commits && s.branches) return {...s, pending: s.pending ?? {}}
  } catch {
    // missing or damaged: start afresh (the hub's own manifests rebuild the mapping on fetch)
  }
  return {version: 1, location, commits: {}, branches: {}, pending: {}}
}

export async function saveOxenState(repo: Repository, remote: string, state: OxenSyncState): Promise<void> {
  const file = stateFile(repo, remote)
  await fs.mkdir(path.dirname(file), {recursive: true})
  await writeFileAtomic(repo.layout.tmp, file, Buffer.from(JSON.stringify(state, null, 1)), true)
}

export async function loadHubFiles(repo: Repository, remote: string, branch: string): Promise<HubFilesCache | null> {
  try {
    const c = JSON.parse(await fs.readFile(filesFile(repo, remote, branch), 'utf8')) as HubFilesCache
    return typeof c.head === 'string' && c.files && typeof c.files === 'object' ? c : null
  } catch {
    return null
  }
}

export async function saveHubFiles(repo: Repository, remote: string, branch: string, cache: HubFilesCache | null): Promise<void> {
  const file = filesFile(repo, remote, branch)
  if (!cache) {
    await fs.rm(file, {force: true})
    return
  }
  await fs.mkdir(path.dirname(file), {recursive: true})
  await writeFileAtomic(repo.layout.tmp, file, Buffer.from(JSON.stringify(cache)), false)
}
