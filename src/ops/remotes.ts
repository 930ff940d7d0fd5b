import {TilesyncError} from '../core/errors.js'
import type {RemoteConfig} from '../repo/config.js'
import {assertValidRefName} from '../repo/refs.js'
import type {Repository} from '../repo/repository.js'
import {openBackend} from '../remote/open-backend.js'
import {RemoteStore} from '../remote/remote-store.js'
import {parseRemoteUrl} from '../remote/remote-url.js'
import * as path from 'node:path'

export interface RemoteListing {
  name: string
  url: string
  endpoint?: string
  host?: string
}

export async function addRemote(repo: Repository, name: string, url: string, extra: Omit<RemoteConfig, 'url'> = {}): Promise<RemoteListing> {
  assertValidRefName(name, 'remote name')
  if (repo.config.remotes[name]) {
    throw new TilesyncError('REMOTE_EXISTS', `remote "${name}" already exists (${repo.config.remotes[name].url})`, {hint: `remove it first with \`tilesync remote remove ${name}\``})
  }
  const loc = parseRemoteUrl(url, repo.root)
  // Directory remotes are stored absolute so commands work from any subdirectory.
  const stored = loc.kind === 'directory' ? loc.path : url
  const config: RemoteConfig = {url: stored, ...Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined))}
  repo.config.remotes[name] = config
  await repo.writeConfig()
  return {name, ...config}
}

export async function removeRemote(repo: Repository, name: string): Promise<RemoteListing> {
  const r = repo.config.remotes[name]
  if (!r) throw unknownRemote(repo, name)
  delete repo.config.remotes[name]
  await repo.writeConfig()
  return {name, ...r}
}

export function listRemotes(repo: Repository): RemoteListing[] {
  return Object.entries(repo.config.remotes).map(([name, r]) => ({name, ...r})).sort((a, b) => a.name.localeCompare(b.name))
}

export function unknownRemote(repo: Repository, name: string): TilesyncError {
  const names = Object.keys(repo.config.remotes)
  return new TilesyncError('REMOTE_UNKNOWN', `no remote named "${name}"${names.length ? ` (remotes: ${names.join(', ')})` : ''}`, {
    hint: 'add one with `tilesync remote add NAME URL`',
  })
}

/** The remote to use when none is named: "origin", or the only one. */
export function defaultRemoteName(repo: Repository, given?: string): string {
  if (given) return given
  const names = Object.keys(repo.config.remotes)
  if (names.includes('origin')) return 'origin'
  if (names.length === 1) return names[0]
  throw new TilesyncError('REMOTE_UNKNOWN', names.length ? `several remotes (${names.join(', ')}): say which one` : 'no remote configured', {
    hint: names.length ? 'e.g. `tilesync push origin`' : 'add one with `tilesync remote add origin PATH_OR_URL`',
  })
}

export function remoteConfig(repo: Repository, name: string): RemoteConfig {
  const r = repo.config.remotes[name]
  if (!r) throw unknownRemote(repo, name)
  return r
}

/** Whether a configured remote is an oxen repository (its code is loaded only when it is). */
export function isOxenRemote(repo: Repository, name: string): boolean {
  return parseRemoteUrl(remoteConfig(repo, name).url, repo.root).kind === 'oxen'
}

export async function openRemoteStore(repo: Repository, name: string): Promise<RemoteStore> {
  return new RemoteStore(await openBackend(remoteConfig(repo, name), repo.root), name)
}

export function remoteStateDir(repo: Repository, name: string): string {
  return path.join(repo.layout.remoteState(name))
}
