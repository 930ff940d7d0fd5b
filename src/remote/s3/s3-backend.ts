import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import {NodeHttpHandler} from '@smithy/node-http-handler'
import {createHash} from 'node:crypto'
import * as http from 'node:http'
import * as https from 'node:https'

import {isTilesyncError, TilesyncError} from '../../core/errors.js'
import {type Backend, type ListedKey, TransientError, type Versioned} from '../backend.js'
import {unwrapBackend} from '../retrying-backend.js'
import type {S3Settings} from './s3-credentials.js'

export interface S3BackendOptions {
  flavour: 'r2' | 's3'
  bucket: string
  /** Key prefix inside the bucket (the path part of r2://BUCKET/prefix). */
  prefix?: string
  settings: S3Settings
  /** Sockets per client: at least the transfer concurrency. */
  maxSockets?: number
  /** Connect / answer / inactivity timeout of one request. */
  timeoutMs?: number
  /** ListObjectsV2 page size (max-keys); the server caps it at 1000. */
  listPageSize?: number
}

export const DEFAULT_REMOTE_TIMEOUT_MS = 60_000

/** TILESYNC_REMOTE_TIMEOUT_MS, else 60 s. */
export function remoteTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.TILESYNC_REMOTE_TIMEOUT_MS)
  return Number.isFinite(v) && v > 0 ? Math.round(v) : DEFAULT_REMOTE_TIMEOUT_MS
}

type Op = 'get' | 'put' | 'list' | 'delete' | 'copy'

/**
 * Values larger than this (packs larger than the default 32 MB, see TILESYNC_PACK_BYTES) go up
 * as a multipart upload of parts of MULTIPART_PART, a few at once: one lost part is sent again
 * instead of the whole value, and the parts travel in parallel over a link where one stream is
 * limited by its round trip. Below it one PUT is cheaper: on s3rver, completing an upload
 * copies its parts again (a 1.4 GB push of 32 MB packs took 35.7 s in parts, 19.8 s as PUTs).
 */
export const MULTIPART_ABOVE = 64 * 1024 * 1024
export const MULTIPART_PART = 8 * 1024 * 1024
const PARTS_IN_FLIGHT = 4

/** MULTIPART_ABOVE, or TILESYNC_MULTIPART_BYTES (at least 5 MiB, S3's smallest part). */
function multipartAbove(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.TILESYNC_MULTIPART_BYTES)
  return Number.isInteger(v) && v >= 5 * 1024 * 1024 ? v : MULTIPART_ABOVE
}

/**
 * A remote in an S3-compatible bucket (Cloudflare R2, AWS S3, MinIO...). One S3Client per
 * backend, path-style, no streaming checksums (R2 and several servers mishandle aws-chunked
 * uploads), Buffer bodies with Content-MD5, and no SDK retries: retrying is the job of
 * RetryingBackend, which this backend feeds with TransientError.
 */
export class S3Backend implements Backend {
  readonly location: string
  readonly bucket: string
  private readonly base: string
  private readonly client: S3Client
  private readonly agent: http.Agent
  private readonly timeoutMs: number
  private readonly listPageSize?: number
  private readonly flavour: 'r2' | 's3'
  /** Kept in an ES private field so that inspecting or logging a backend never shows the keys. */
  readonly #settings: S3Settings

  constructor(options: S3BackendOptions) {
    this.#settings = options.settings
    this.flavour = options.flavour
    this.bucket = options.bucket
    const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '')
    this.base = prefix ? `${prefix}/` : ''
    this.location = `${options.flavour}://${options.bucket}${prefix ? `/${prefix}` : ''}`
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT_MS
    this.listPageSize = options.listPageSize
    // The SDK is pinned in package.json; its warning concerns later releases, not this one.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
    const maxSockets = Math.max(1, options.maxSockets ?? 50)
    const secure = options.settings.endpoint.startsWith('https:')
    this.agent = secure ? new https.Agent({keepAlive: true, maxSockets}) : new http.Agent({keepAlive: true, maxSockets})
    this.client = new S3Client({
      endpoint: options.settings.endpoint,
      region: options.settings.region,
      credentials: options.settings.credentials,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({
        ...(secure ? {httpsAgent: this.agent as https.Agent} : {httpAgent: this.agent}),
        connectionTimeout: this.timeoutMs,
        requestTimeout: this.timeoutMs,
        throwOnRequestTimeout: true,
        socketTimeout: this.timeoutMs,
      }),
    })
  }

  get endpoint(): string {
    return this.#settings.endpoint
  }

  /** The object key in the bucket for a backend key. */
  private full(key: string): string {
    return this.base + key
  }

  async get(key: string): Promise<Buffer | null> {
    return (await this.read(key))?.bytes ?? null
  }

  async getVersioned(key: string): Promise<Versioned | null> {
    const r = await this.read(key)
    if (!r) return null
    if (!r.etag) throw new TilesyncError('REMOTE_PROTOCOL', `${this.location} answered without an ETag for ${key}`, {hint: 'the server does not support compare-and-swap; use R2, S3 or another S3-compatible store'})
    return {bytes: r.bytes, etag: r.etag}
  }

  /** A ranged GET (one request, the pack reader's coalesced ranges). */
  async getRange(key: string, start: number, length: number): Promise<Buffer | null> {
    if (length <= 0) return Buffer.alloc(0)
    return (await this.read(key, `bytes=${start}-${start + length - 1}`))?.bytes ?? null
  }

  private async read(key: string, range?: string): Promise<{bytes: Buffer; etag?: string} | null> {
    try {
      const res = await this.client.send(new GetObjectCommand({Bucket: this.bucket, Key: this.full(key), ...(range ? {Range: range} : {})}))
      // Always consume the body, or the socket never returns to the pool.
      const body = res.Body ? await res.Body.transformToByteArray() : new Uint8Array()
      const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
      if (res.ContentLength !== undefined && res.ContentLength !== bytes.length) {
        throw new TransientError(`download of ${key} from ${this.location} was cut short (${bytes.length} of ${res.ContentLength} bytes)`)
      }
      return {bytes, etag: res.ETag}
    } catch (error) {
      if (isNotFound(error)) return null
      // A range starting past the end: the value is shorter than its reader thinks (a cut pack).
      if (range && (statusOf(error) === 416 || codeOf(error) === 'InvalidRange')) return {bytes: Buffer.alloc(0)}
      throw this.mapError(error, 'get', key)
    }
  }

  async put(key: string, bytes: Buffer): Promise<void> {
    if (bytes.length > multipartAbove()) return this.putMultipart(key, bytes)
    try {
      await this.client.send(this.putCommand(key, bytes))
    } catch (error) {
      throw this.mapError(error, 'put', key)
    }
  }

  /**
   * S3's multipart upload: the value appears whole at CompleteMultipartUpload or not at all;
   * a failed upload is aborted so its parts are not kept (and billed) by the bucket.
   */
  private async putMultipart(key: string, bytes: Buffer): Promise<void> {
    const Key = this.full(key)
    let uploadId: string | undefined
    try {
      uploadId = (await this.client.send(new CreateMultipartUploadCommand({Bucket: this.bucket, Key}))).UploadId
      if (!uploadId) throw new TransientError(`${this.location} started a multipart upload of ${key} without an upload id`)
      // Parts of at least 5 MiB (S3's smallest) when a smaller threshold was asked for.
      const partSize = Math.min(MULTIPART_PART, Math.max(5 * 1024 * 1024, multipartAbove()))
      const count = Math.ceil(bytes.length / partSize)
      const parts: Array<{ETag: string; PartNumber: number}> = new Array(count)
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < count) {
          const i = next++
          const body = bytes.subarray(i * partSize, Math.min(bytes.length, (i + 1) * partSize))
          const res = await this.client.send(new UploadPartCommand({
            Bucket: this.bucket, Key, UploadId: uploadId, PartNumber: i + 1, Body: body,
            ContentLength: body.length, ContentMD5: createHash('md5').update(body).digest('base64'),
          }))
          parts[i] = {ETag: res.ETag ?? '', PartNumber: i + 1}
        }
      }
      await Promise.all(Array.from({length: Math.min(PARTS_IN_FLIGHT, count)}, worker))
      await this.client.send(new CompleteMultipartUploadCommand({Bucket: this.bucket, Key, UploadId: uploadId, MultipartUpload: {Parts: parts}}))
    } catch (error) {
      if (uploadId) await this.client.send(new AbortMultipartUploadCommand({Bucket: this.bucket, Key, UploadId: uploadId})).catch(() => undefined)
      throw this.mapError(error, 'put', key)
    }
  }

  private putCommand(key: string, bytes: Buffer, condition: {IfMatch?: string; IfNoneMatch?: string} = {}): PutObjectCommand {
    return new PutObjectCommand({
      Bucket: this.bucket,
      Key: this.full(key),
      Body: bytes,
      ContentLength: bytes.length,
      ContentMD5: createHash('md5').update(bytes).digest('base64'),
      ...condition,
    })
  }

  async putIfMatch(key: string, bytes: Buffer, expected: string | null): Promise<boolean> {
    const condition = expected === null ? {IfNoneMatch: '*'} : {IfMatch: expected}
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.send(this.putCommand(key, bytes, condition))
        return true
      } catch (error) {
        const status = statusOf(error)
        const code = codeOf(error)
        if (status === 412 || code === 'PreconditionFailed') return false
        // Both conditions are evaluated against "no object" when the key is absent.
        if (expected !== null && (status === 404 || code === 'NoSuchKey')) return false
        if (status === 409 || code === 'ConditionalRequestConflict') {
          // A concurrent conditional write is in flight: see where the key is now.
          const now = await this.read(key)
          if ((now?.etag ?? null) !== expected) return false
          if (attempt >= 5) throw new TransientError(`${this.location}: concurrent writes to ${key} kept conflicting`, undefined, {cause: scrub(error)})
          await new Promise((r) => setTimeout(r, 50 * attempt + Math.random() * 100))
          continue
        }
        throw this.mapError(error, 'put', key)
      }
    }
  }

  async *list(prefix: string): AsyncIterable<ListedKey> {
    let token: string | undefined
    const seen = new Set<string>()
    do {
      let res
      try {
        res = await this.client.send(new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.full(prefix),
          ContinuationToken: token,
          ...(this.listPageSize ? {MaxKeys: this.listPageSize} : {}),
        }))
      } catch (error) {
        throw this.mapError(error, 'list', prefix)
      }
      for (const o of res.Contents ?? []) {
        if (!o.Key?.startsWith(this.base)) continue
        yield {key: o.Key.slice(this.base.length), size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0}
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined
      if (res.IsTruncated && (!token || seen.has(token))) {
        throw new TilesyncError('REMOTE_PROTOCOL', `${this.location} returned a truncated listing without a usable continuation token`, {hint: 'the server does not implement ListObjectsV2 pagination correctly'})
      }
      if (token) seen.add(token)
    } while (token)
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({Bucket: this.bucket, Key: this.full(key)}))
    } catch (error) {
      if (isNotFound(error)) return
      throw this.mapError(error, 'delete', key)
    }
  }

  /** DeleteObjects, 1,000 keys a request (the most S3 and R2 take); a key that is not there is no error. */
  async deleteMany(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000)
      let res
      try {
        res = await this.client.send(new DeleteObjectsCommand({Bucket: this.bucket, Delete: {Objects: batch.map((k) => ({Key: this.full(k)})), Quiet: true}}))
      } catch (error) {
        throw this.mapError(error, 'delete', batch[0])
      }
      const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey')
      if (failed.length > 0) {
        throw new TilesyncError('TRANSFER_FAILED', `${this.location}: ${failed.length} of ${batch.length} keys were not deleted, e.g. ${failed[0].Key} (${failed[0].Code}: ${failed[0].Message})`, {
          hint: 'the key needs s3:DeleteObject; run the command again to delete what is left',
        })
      }
    }
  }

  /** Server-side CopyObject, when `source` lives on the same endpoint under the same credentials. */
  async copyFrom(source: Backend, key: string): Promise<boolean> {
    const src = unwrapBackend(source)
    if (!(src instanceof S3Backend) || !this.sameAccountAs(src)) return false
    const from = `${src.bucket}/${src.full(key).split('/').map(encodeURIComponent).join('/')}`
    try {
      await this.client.send(new CopyObjectCommand({Bucket: this.bucket, Key: this.full(key), CopySource: from}))
      return true
    } catch (error) {
      if (codeOf(error) === 'NoSuchKey') {
        throw new TilesyncError('OBJECT_MISSING', `cannot copy ${key}: it is missing on ${src.location}`, {data: {key}})
      }
      throw this.mapError(error, 'copy', key)
    }
  }

  private sameAccountAs(other: S3Backend): boolean {
    const a = this.#settings
    const b = other.#settings
    return a.endpoint === b.endpoint &&
      a.credentials.accessKeyId === b.credentials.accessKeyId &&
      a.credentials.secretAccessKey === b.credentials.secretAccessKey &&
      a.credentials.sessionToken === b.credentials.sessionToken
  }

  async close(): Promise<void> {
    this.client.destroy()
    this.agent.destroy()
  }

  /** Turns an SDK or network failure into TransientError (worth retrying) or a TilesyncError. */
  private mapError(error: unknown, op: Op, key: string): Error {
    if (isTilesyncError(error) || error instanceof TransientError) return error as Error
    const status = statusOf(error)
    const code = codeOf(error)
    const errno = (error as {code?: string})?.code
    const what = `${op} ${key || '(root)'} on ${this.location}`
    const vars = this.#settings.vars

    if (code === 'TimeoutError' || errno === 'ETIMEDOUT') {
      return new TransientError(`${what}: no answer from ${this.endpoint} within ${this.timeoutMs} ms (set TILESYNC_REMOTE_TIMEOUT_MS to wait longer)`, undefined, {cause: scrub(error)})
    }
    if (errno === 'ENOTFOUND' || errno === 'ECONNREFUSED' || errno === 'EHOSTUNREACH' || errno === 'ENETUNREACH' || errno === 'CERT_HAS_EXPIRED' || errno === 'DEPTH_ZERO_SELF_SIGNED_CERT' || errno === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE') {
      return new TilesyncError('REMOTE_UNREACHABLE', `cannot reach ${this.endpoint} for ${this.location} (${errno})`, {
        hint: 'check the endpoint (and R2_ACCOUNT_ID for r2:// remotes) and your network connection',
        cause: scrub(error),
      })
    }
    if (errno && (NETWORK_TRANSIENT.has(errno) || /socket hang up|aborted/i.test((error as Error).message ?? ''))) {
      return new TransientError(`${what}: connection failed (${errno})`, undefined, {cause: scrub(error)})
    }
    if (code === 'NoSuchBucket') {
      return new TilesyncError('REMOTE_UNREACHABLE', `bucket "${this.bucket}" does not exist at ${this.endpoint}`, {
        hint: `create the bucket "${this.bucket}" or fix the remote URL`,
        data: {bucket: this.bucket},
        cause: scrub(error),
      })
    }
    if (status === 401 || status === 403 || AUTH_CODES.has(code ?? '')) {
      return new TilesyncError('REMOTE_AUTH', `${what} was refused: ${this.authReason(code, op)}`, {
        hint: this.flavour === 'r2'
          ? `check ${vars.accessKeyId} and ${vars.secretAccessKey}; the R2 API token needs "Object Read & Write" on bucket "${this.bucket}"`
          : `check ${vars.accessKeyId} and ${vars.secretAccessKey}; the key needs s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on bucket "${this.bucket}"`,
        data: {status, code, bucket: this.bucket},
        cause: scrub(error),
      })
    }
    if (status === 429 || (status !== undefined && status >= 500) || TRANSIENT_CODES.has(code ?? '')) {
      return new TransientError(`${what}: the server answered ${status ?? ''} ${code ?? ''}`.replace(/\s+/g, ' ').trim(), retryAfterOf(error), {cause: scrub(error)})
    }
    return new TilesyncError('REMOTE_PROTOCOL', `${what} failed: ${status ?? 'no status'} ${code ?? ''} ${shortMessage(error)}`.trim(), {
      hint: 'the server answered something tilesync did not expect; check the endpoint is an S3-compatible API',
      data: {status, code},
      cause: scrub(error),
    })
  }

  private authReason(code: string | undefined, op: Op): string {
    const vars = this.#settings.vars
    switch (code) {
      case 'InvalidAccessKeyId':
        return `the access key in ${vars.accessKeyId} is not known to ${this.endpoint}`
      case 'SignatureDoesNotMatch':
        return `${vars.secretAccessKey} does not belong to the access key in ${vars.accessKeyId}`
      case 'ExpiredToken':
      case 'InvalidToken':
        return 'the session token (AWS_SESSION_TOKEN) is expired or invalid'
      default: {
        const perm = PERMISSION[op]
        return `access denied; the credentials in ${vars.accessKeyId} lack ${perm} permission on bucket "${this.bucket}"`
      }
    }
  }
}

const PERMISSION: Record<Op, string> = {
  get: 'read (s3:GetObject; AWS also answers 403 for a missing key without s3:ListBucket)',
  put: 'write (s3:PutObject)',
  list: 'list (s3:ListBucket)',
  delete: 'delete (s3:DeleteObject)',
  copy: 'read and write (s3:GetObject on the source, s3:PutObject here)',
}

const AUTH_CODES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'Unauthorized', 'Forbidden'])
const TRANSIENT_CODES = new Set(['SlowDown', 'InternalError', 'ServiceUnavailable', 'RequestTimeout', 'TooManyRequests', 'Throttling', 'ThrottlingException'])
const NETWORK_TRANSIENT = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET'])

function statusOf(error: unknown): number | undefined {
  return (error as {$metadata?: {httpStatusCode?: number}})?.$metadata?.httpStatusCode
}

function codeOf(error: unknown): string | undefined {
  const e = error as {Code?: string; name?: string}
  return e?.Code ?? e?.name
}

function isNotFound(error: unknown): boolean {
  const code = codeOf(error)
  if (code === 'NoSuchBucket') return false
  return code === 'NoSuchKey' || code === 'NotFound' || statusOf(error) === 404
}

function shortMessage(error: unknown): string {
  const m = (error as Error)?.message ?? ''
  return m.split('\n')[0].slice(0, 200)
}

/**
 * Keeps only status and code of an SDK error used as a `cause`: the raw response and the
 * request it describes are never carried along into logs.
 */
function scrub(error: unknown): Error {
  const errno = (error as {code?: unknown})?.code
  return Object.assign(new Error(shortMessage(error)), {name: codeOf(error) ?? 'Error', status: statusOf(error), ...(typeof errno === 'string' ? {code: errno} : {})})
}

/** Retry-After in milliseconds, as seconds or as an HTTP date. */
export function parseRetryAfter(value: string | undefined | null, now = Date.now()): number | undefined {
  if (!value) return undefined
  const v = value.trim()
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000)
  const at = Date.parse(v)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

function retryAfterOf(error: unknown): number | undefined {
  const headers = (error as {$response?: {headers?: Record<string, string>}})?.$response?.headers
  if (!headers) return undefined
  const key = Object.keys(headers).find((k) => k.toLowerCase() === 'retry-after')
  return key ? parseRetryAfter(headers[key]) : undefined
}
