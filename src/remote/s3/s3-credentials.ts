import {parse} from 'dotenv'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {TilesyncError} from '../../core/errors.js'
import type {RemoteConfig} from '../../repo/config.js'

/** An r2:// or s3:// URL, parsed. */
export interface S3Location {
  kind: 's3'
  flavour: 'r2' | 's3'
  bucket: string
  prefix: string
}

/**
 * Everything needed to talk to one S3-compatible endpoint. Built at the moment a remote is
 * used, from the environment (and a `.env` file at the repository root, or in the working directory outside one); never stored.
 */
export interface S3Settings {
  endpoint: string
  region: string
  credentials: {accessKeyId: string; secretAccessKey: string; sessionToken?: string}
  /** The variable names the keys came from, so error messages can say which one to fix. */
  vars: {accessKeyId: string; secretAccessKey: string}
}

export interface CredentialSources {
  env?: NodeJS.ProcessEnv
  /** Where to look for `.env`; defaults to the current working directory. */
  cwd?: string
}

/**
 * Resolves endpoint, region and keys for an r2:// or s3:// remote.
 *
 * r2://BUCKET/prefix: R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY and R2_ACCOUNT_ID (the last only
 * when the remote has no explicit `endpoint`). s3://BUCKET/prefix: AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN optional), AWS_REGION (default `auto`), and the
 * remote's `endpoint` (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, or AWS S3 itself when a real
 * region is set). Variables set in the process win over `.env`.
 */
export function resolveS3Settings(loc: S3Location, remote: RemoteConfig, sources: CredentialSources = {}): S3Settings {
  const env = mergedEnv(sources.env ?? process.env, sources.cwd ?? process.cwd())
  const where = `${loc.flavour}://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`

  if (loc.flavour === 'r2') {
    const vars = {accessKeyId: 'R2_ACCESS_KEY_ID', secretAccessKey: 'R2_SECRET_ACCESS_KEY'}
    const required = remote.endpoint ? [vars.accessKeyId, vars.secretAccessKey] : ['R2_ACCOUNT_ID', vars.accessKeyId, vars.secretAccessKey]
    requireVars(env, required, where)
    const endpoint = remote.endpoint ?? `https://${env.R2_ACCOUNT_ID}.r2.cloudflarestorage.com`
    return {
      endpoint: checkEndpoint(endpoint, where),
      region: remote.region ?? 'auto',
      credentials: {accessKeyId: env[vars.accessKeyId]!, secretAccessKey: env[vars.secretAccessKey]!},
      vars,
    }
  }

  const vars = {accessKeyId: 'AWS_ACCESS_KEY_ID', secretAccessKey: 'AWS_SECRET_ACCESS_KEY'}
  requireVars(env, [vars.accessKeyId, vars.secretAccessKey], where)
  const region = remote.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'auto'
  let endpoint = remote.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL
  if (!endpoint) {
    if (region === 'auto') {
      throw new TilesyncError('BAD_CONFIG', `remote ${where} has no endpoint`, {
        hint: 'give the S3-compatible endpoint with `tilesync remote add NAME s3://BUCKET/prefix --endpoint URL`, or set AWS_REGION to use AWS S3 itself',
      })
    }
    endpoint = `https://s3.${region}.amazonaws.com`
  }
  return {
    endpoint: checkEndpoint(endpoint, where),
    region,
    credentials: {
      accessKeyId: env[vars.accessKeyId]!,
      secretAccessKey: env[vars.secretAccessKey]!,
      ...(env.AWS_SESSION_TOKEN ? {sessionToken: env.AWS_SESSION_TOKEN} : {}),
    },
    vars,
  }
}

/** `.env` values under the process environment: a variable set (non-empty) in the process wins. */
function mergedEnv(env: NodeJS.ProcessEnv, cwd: string): Record<string, string | undefined> {
  let fromFile: Record<string, string> = {}
  try {
    fromFile = parse(fs.readFileSync(path.join(cwd, '.env')))
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'EISDIR') {
      throw new TilesyncError('BAD_CONFIG', `cannot read ${path.join(cwd, '.env')}: ${code ?? 'unreadable'}`, {hint: 'fix its permissions or remove it'})
    }
  }
  const out: Record<string, string | undefined> = {...fromFile}
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v
  return out
}

function requireVars(env: Record<string, string | undefined>, names: string[], where: string): void {
  const missing = names.filter((n) => !env[n]?.trim())
  if (missing.length === 0) return
  throw new TilesyncError('REMOTE_AUTH', `remote ${where} needs ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} not set`, {
    hint: 'set them in the environment or in a .env file at the repository root (credentials are never stored in .tilesync/)',
    data: {missing},
  })
}

function checkEndpoint(endpoint: string, where: string): string {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new TilesyncError('BAD_CONFIG', `remote ${where} has an invalid endpoint "${endpoint}"`, {hint: 'use a URL such as https://ACCOUNT.r2.cloudflarestorage.com'})
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TilesyncError('BAD_CONFIG', `remote ${where} has an endpoint that is not http(s): "${endpoint}"`, {hint: 'use an https:// endpoint'})
  }
  if (url.username || url.password) {
    throw new TilesyncError('BAD_CONFIG', `remote ${where} has credentials inside its endpoint URL`, {hint: 'remove them from the URL and set them in the environment instead'})
  }
  return endpoint.replace(/\/+$/, '')
}
