import {TilesyncError} from '../core/errors.js'
import type {RemoteConfig} from '../repo/config.js'
import type {Repository} from '../repo/repository.js'
import {parseRemoteUrl, remoteKindOf, storedRemoteUrl} from '../remote/registry.js'
import {remoteConfig} from '../ops/remotes.js'

/** Whether a `--production` / `--staging` value is a URL or path rather than a remote name. */
export function looksLikeUrl(value: string): boolean {
  return /^[a-z0-9+.-]+:\/\//i.test(value) || value.startsWith('/') || value.startsWith('./') || value.startsWith('../')
}

function sameLocation(a: RemoteConfig, b: RemoteConfig, cwd: string): boolean {
  const la = parseRemoteUrl(a.url, cwd)
  const lb = parseRemoteUrl(b.url, cwd)
  if (la.form === 'path' && lb.form === 'path') return la.path === lb.path
  return a.url.replace(/\/+$/, '') === b.url.replace(/\/+$/, '') && (a.endpoint ?? '') === (b.endpoint ?? '') && (a.host ?? '') === (b.host ?? '')
}

export function assertObjectStoreRemote(config: RemoteConfig, what: string): void {
  if (!remoteKindOf(config.url).storesObjects) {
    throw new TilesyncError('REMOTE_UNSUPPORTED', `${what} is an oxen.ai dataset (${config.url}); releases go through directory, S3 or R2 remotes`, {
      hint: 'stage and publish through buckets; push to oxen separately',
    })
  }
}

/**
 * Remotes a release command uses for one run: a configured remote by name, or a location
 * (URL or path) that is matched to a configured remote when one points there, and otherwise
 * registered for this run only (in memory; `.tilesync/config.json` is not written).
 * `release()` takes the run-only ones away again.
 */
export class RunRemotes {
  private readonly added: string[] = []

  constructor(private readonly repo: Repository, private readonly cwd: string) {}

  byName(name: string): string {
    remoteConfig(this.repo, name)
    return name
  }

  /** The configured remote pointing at this location, if any. */
  find(config: RemoteConfig): string | null {
    for (const [name, existing] of Object.entries(this.repo.config.remotes)) {
      if (sameLocation(existing, config, this.cwd)) return name
    }
    return null
  }

  byLocation(config: RemoteConfig, preferredName: string): string {
    const found = this.find(config)
    if (found) return found
    let name = preferredName
    for (let i = 2; this.repo.config.remotes[name]; i++) name = `${preferredName}-${i}`
    this.repo.config.remotes[name] = {...config, url: storedRemoteUrl(config.url, this.cwd)}
    this.added.push(name)
    return name
  }

  /** A name, or a location given with its extra settings (endpoint, region). */
  resolve(value: string, extra: Omit<RemoteConfig, 'url'>, preferredName: string): string {
    if (looksLikeUrl(value)) return this.byLocation({url: value, ...dropUndefined(extra)}, preferredName)
    return this.byName(value)
  }

  release(): void {
    for (const name of this.added) delete this.repo.config.remotes[name]
    this.added.length = 0
  }
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}
