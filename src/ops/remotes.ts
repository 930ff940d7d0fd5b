import {TilesyncError} from '../core/errors.js'
import type {RemoteConfig} from '../repo/config.js'
import {assertValidRefName} from '../repo/refs.js'
import type {Repository} from '../repo/repository.js'
import {openTransport, remoteKindOf, storedRemoteUrl, type TransportTuning} from '../remote/registry.js'
import type {VerifyCheck} from '../remote/capabilities.js'
import type {Transport} from '../remote/transport.js'

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
  // Directory remotes are stored absolute so commands work from any subdirectory.
  const stored = storedRemoteUrl(url, repo.root)
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

/** Whether a configured remote keeps objects by id (fsck can repair from it), known without opening it. */
export function storesObjects(repo: Repository, name: string): boolean {
  return remoteKindOf(remoteConfig(repo, name).url).storesObjects
}

/** Opens a configured remote; its kind's code loads only now. */
export function openRemote(repo: Repository, name: string, tuning?: TransportTuning): Promise<Transport> {
  return openTransport(remoteConfig(repo, name), {name, cwd: repo.root, tuning})
}

/**
 * Proves a remote is usable by doing on a scratch key what push and pull will do. Throws
 * when it cannot be opened (missing credentials) or cannot be checked that way.
 */
export async function verifyRemote(repo: Repository, name: string): Promise<VerifyCheck[]> {
  const remote = await openRemote(repo, name)
  try {
    if (!remote.verify) {
      throw new TilesyncError('REMOTE_UNSUPPORTED', `${remoteConfig(repo, name).url} is an ${remote.kind} remote, not an object store`, {hint: 'it is checked by pushing to it and pulling from it'})
    }
    return await remote.verify()
  } finally {
    await remote.close()
  }
}
