import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import {TilesyncError} from '../core/errors.js'
import type {RemoteConfig} from '../repo/config.js'
import type {Backend} from './backend.js'
import type {OpenContext, RemoteKindModule, RemoteLocation, UrlForm} from './remote-kind.js'
import type {Transport} from './transport.js'

export type {OpenContext, RemoteLocation, TransportTuning} from './remote-kind.js'

export interface RemoteKind {
  form: UrlForm
  /** Whether it keeps content-addressed objects (fsck --remote, prune, promotion, releases), known without loading it. */
  storesObjects: boolean
  /** How users write it, for the hint of a rejected URL (none: not offered to users). */
  example?: string
  load: () => Promise<RemoteKindModule>
}

/**
 * Every kind of remote, by URL scheme (as rclone registers its backends). Each module loads
 * only when a remote of its kind is used, so start-up pays for none of them. A new kind is
 * one line here, its module, and its test file running the transport conformance suite.
 */
const KINDS = new Map<string, RemoteKind>([
  ['file', {form: 'path', storesObjects: true, example: 'a directory path, file:///path', load: () => import('./directory-remote.js')}],
  ['r2', {form: 'bucket', storesObjects: true, example: 'r2://BUCKET/prefix', load: () => import('./s3/s3-remote.js')}],
  ['s3', {form: 'bucket', storesObjects: true, example: 's3://BUCKET/prefix', load: () => import('./s3/s3-remote.js')}],
  ['oxen', {form: 'repository', storesObjects: false, example: 'oxen://NAMESPACE/REPO', load: () => import('./oxen/oxen-transport.js')}],
])

/** Adds a kind at run time (tests register an in-memory one). */
export function registerRemoteKind(scheme: string, kind: RemoteKind): void {
  KINDS.set(scheme.toLowerCase(), kind)
}

function unsupported(url: string): TilesyncError {
  const examples = [...KINDS.values()].flatMap((k) => (k.example ? [k.example] : []))
  return new TilesyncError('REMOTE_UNSUPPORTED', `cannot use "${url}" as a remote`, {
    hint: `use ${examples.slice(0, -1).join(', ')} or ${examples.at(-1)}`,
  })
}

/**
 * Parses what users type after `remote add NAME`: a directory path or file:// URL,
 * r2://BUCKET/prefix, s3://BUCKET/prefix, oxen://NAMESPACE/REPO.
 */
export function parseRemoteUrl(url: string, cwd = process.cwd()): RemoteLocation {
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(url)?.[1]?.toLowerCase()
  if (!scheme) return {form: 'path', scheme: 'file', path: path.resolve(cwd, url)}
  const kind = KINDS.get(scheme)
  if (!kind) throw unsupported(url)
  if (kind.form === 'path') return {form: 'path', scheme: 'file', path: fileURLToPath(url)}
  const rest = url.slice(scheme.length + 3)
  const [first, ...more] = rest.split('/').filter(Boolean)
  if (kind.form === 'bucket' && first) return {form: 'bucket', scheme, bucket: first, prefix: more.join('/')}
  if (kind.form === 'repository' && first && more.length === 1) return {form: 'repository', scheme, namespace: first, repo: more[0]}
  throw unsupported(url)
}

export function remoteKindOf(url: string): RemoteKind {
  return KINDS.get(parseRemoteUrl(url, '/').scheme)!
}

/** The URL as configuration keeps it: directories absolute, so commands work from any subdirectory. */
export function storedRemoteUrl(url: string, cwd?: string): string {
  const loc = parseRemoteUrl(url, cwd)
  return loc.form === 'path' ? loc.path : url
}

/** The name a clone of `url` gets by default: the directory's, the prefix's last part, the repository's. */
export function defaultNameOf(url: string): string {
  const loc = parseRemoteUrl(url)
  const base = loc.form === 'path' ? path.basename(loc.path) : loc.form === 'bucket' ? (loc.prefix.split('/').pop() || loc.bucket) : loc.repo
  return base.replace(/\.tilesync$/, '') || 'tiles'
}

/** Opens a configured remote through its kind's module. */
export async function openTransport(config: RemoteConfig, context: OpenContext): Promise<Transport> {
  const loc = parseRemoteUrl(config.url, context.cwd)
  return (await KINDS.get(loc.scheme)!.load()).openTransport(loc, config, context)
}

/** The key/bytes storage behind an object-store remote. */
export async function openBackend(config: RemoteConfig, cwd?: string): Promise<Backend> {
  const loc = parseRemoteUrl(config.url, cwd)
  const module = await KINDS.get(loc.scheme)!.load()
  if (!module.openBackend) {
    throw new TilesyncError('REMOTE_UNSUPPORTED', `${config.url} is an ${loc.scheme} remote, not an object store`, {
      hint: 'it is pushed to and pulled from as a whole, not read key by key',
    })
  }
  return module.openBackend(loc, config, cwd)
}
