import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import {TilesyncError} from '../core/errors.js'

export type RemoteLocation =
  | {kind: 'directory'; path: string}
  | {kind: 's3'; flavour: 'r2' | 's3'; bucket: string; prefix: string}
  | {kind: 'oxen'; namespace: string; repo: string}

/**
 * Parses what users type after `remote add NAME`: a directory path or file:// URL,
 * r2://BUCKET/prefix, s3://BUCKET/prefix, oxen://NAMESPACE/REPO.
 */
export function parseRemoteUrl(url: string, cwd = process.cwd()): RemoteLocation {
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(url)?.[1]?.toLowerCase()
  if (!scheme) return {kind: 'directory', path: path.resolve(cwd, url)}
  if (scheme === 'file') return {kind: 'directory', path: fileURLToPath(url)}
  const rest = url.slice(scheme.length + 3)
  const [first, ...more] = rest.split('/').filter(Boolean)
  if ((scheme === 'r2' || scheme === 's3') && first) {
    return {kind: 's3', flavour: scheme, bucket: first, prefix: more.join('/')}
  }
  if (scheme === 'oxen' && first && more.length === 1) return {kind: 'oxen', namespace: first, repo: more[0]}
  throw new TilesyncError('REMOTE_UNSUPPORTED', `cannot use "${url}" as a remote`, {
    hint: 'use a directory path, file:///path, r2://BUCKET/prefix, s3://BUCKET/prefix or oxen://NAMESPACE/REPO',
  })
}
