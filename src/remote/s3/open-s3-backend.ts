import type {RemoteConfig} from '../../repo/config.js'
import type {Backend} from '../backend.js'
import {remoteRetries, RetryingBackend} from '../retrying-backend.js'
import {remoteTimeoutMs, S3Backend} from './s3-backend.js'
import {type CredentialSources, resolveS3Settings, type S3Location} from './s3-credentials.js'

/** Transfers run this many requests at once unless TILESYNC_JOBS says otherwise. */
const DEFAULT_JOBS = 16

/**
 * Opens an r2:// or s3:// remote: credentials from the environment (or ./.env), one S3
 * client sized for the transfer concurrency, wrapped in retries.
 */
export async function openS3Backend(loc: S3Location, remote: RemoteConfig, sources: CredentialSources = {}): Promise<Backend> {
  const env = sources.env ?? process.env
  const settings = resolveS3Settings(loc, remote, sources)
  const jobs = Number(env.TILESYNC_JOBS)
  const concurrency = Number.isInteger(jobs) && jobs > 0 ? jobs : DEFAULT_JOBS
  const s3 = new S3Backend({
    flavour: loc.flavour,
    bucket: loc.bucket,
    prefix: loc.prefix,
    settings,
    maxSockets: Math.max(50, concurrency + 8),
    timeoutMs: remoteTimeoutMs(env),
  })
  return new RetryingBackend(s3, {attempts: remoteRetries(env)})
}
