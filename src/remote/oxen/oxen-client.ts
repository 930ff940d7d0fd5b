import {createRequire} from 'node:module'
import {promisify} from 'node:util'
import * as zlib from 'node:zlib'
import pLimit from 'p-limit'

import {isTilesyncError, TilesyncError, type ErrorCode} from '../../core/errors.js'
import {resolveOxenToken} from './oxen-auth.js'
import {OxenHttp, type OxenRequest, type OxenRetryEvent} from './oxen-http.js'
import {DEFAULT_OXEN_HOST, resolveOxenOrigin} from './oxen-origin.js'
import type {NewOxenCommit, OxenBranch, OxenChanges, OxenCommit, OxenEntry, OxenRepository, OxenUploadFile, OxenWorkspace} from './oxen-types.js'
import {encodeMultipart} from './multipart.js'
import {badUploadPath, planUploadBatches} from './upload-batches.js'

const gzip = promisify(zlib.gzip)
const MiB = 1024 * 1024

export interface OxenClientOptions {
  namespace: string
  repo: string
  /** Bearer token; see resolveOxenToken / OxenClient.open for where it usually comes from. */
  token: string
  /** "hub.oxen.ai" (default), "127.0.0.1:3000" or an origin URL such as http://127.0.0.1:3000. */
  host?: string
  /** Parallel upload requests (default 8). */
  concurrency?: number
  /** Upload request size before gzip (default 10 MiB, the official client's). */
  batchBytes?: number
  /** Largest single file sent through a workspace (default 10 MiB, the hub's per-part cap). */
  maxFileBytes?: number
  /** Attempts to get every file staged when the hub's `paths` answer leaves some out (default 3). */
  uploadTries?: number
  /** Retries after 5xx or network failures (default 3). */
  retries?: number
  /** Waits honoured after 429 (default 6). */
  busyRetries?: number
  /** First backoff after a 5xx, doubled each time (default 500 ms). */
  backoffMs?: number
  /** Longest Retry-After honoured (default 60 s). */
  maxRetryAfterMs?: number
  /** Per request (default 5 minutes). */
  timeoutMs?: number
  userAgent?: string
  onRetry?: (event: OxenRetryEvent) => void
}

export interface UploadResult {
  files: number
  bytes: number
  requests: number
}

/**
 * The oxen hub's HTTP API for one repository (`{namespace}/{repo}`), as tilesync uses it:
 * read refs, history, listings and files; write through a workspace (upload, remove, commit).
 * It knows endpoints and JSON, nothing of tilesync's own commits: the dataset layout is
 * decided above it. Every failure is a one-line TilesyncError that never contains the token.
 */
export class OxenClient {
  readonly namespace: string
  readonly repo: string
  /** host[:port], for messages and auth lookups. */
  readonly host: string
  /** Human name of the remote: host/namespace/repo. */
  readonly location: string
  private readonly http: OxenHttp
  private readonly base: string
  private readonly concurrency: number
  private readonly batchBytes: number
  private readonly maxFileBytes: number
  private readonly uploadTries: number
  /** Set once any repository-scoped call succeeded: a later 404 then means "no such path". */
  private repoSeen = false

  constructor(options: OxenClientOptions) {
    checkName(options.namespace, 'namespace')
    checkName(options.repo, 'repository')
    if (!options.token) throw new TilesyncError('REMOTE_AUTH', 'no oxen API token', {hint: 'set OXEN_API_TOKEN or run `oxen config --auth HOST TOKEN`'})
    const {origin, host} = resolveOxenOrigin(options.host ?? DEFAULT_OXEN_HOST)
    this.namespace = options.namespace
    this.repo = options.repo
    this.host = host
    this.location = `${host}/${options.namespace}/${options.repo}`
    this.base = `/api/repos/${encodeURIComponent(options.namespace)}/${encodeURIComponent(options.repo)}`
    this.concurrency = Math.max(1, options.concurrency ?? 8)
    this.batchBytes = Math.max(1, options.batchBytes ?? 10 * MiB)
    this.maxFileBytes = options.maxFileBytes ?? 10 * MiB
    this.uploadTries = Math.max(1, options.uploadTries ?? 3)
    this.http = new OxenHttp({
      origin,
      host,
      token: options.token,
      userAgent: options.userAgent ?? defaultUserAgent(),
      retries: options.retries ?? 3,
      busyRetries: options.busyRetries ?? 6,
      backoffMs: options.backoffMs ?? 500,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
      timeoutMs: options.timeoutMs ?? 300_000,
      onRetry: options.onRetry,
    })
  }

  /** A client whose token comes from OXEN_API_TOKEN or the oxen CLI's auth_config.toml. */
  static async open(options: Omit<OxenClientOptions, 'token'> & {token?: string; env?: Record<string, string | undefined>}): Promise<OxenClient> {
    const {host} = resolveOxenOrigin(options.host ?? DEFAULT_OXEN_HOST)
    const token = options.token ?? await resolveOxenToken(host, options.env)
    return new OxenClient({...options, token})
  }

  // ---- repository ---------------------------------------------------------------------

  /** The repository, or null when the hub has none by that name. */
  async findRepo(): Promise<OxenRepository | null> {
    const res = await this.http.json({method: 'GET', path: this.base, what: `read repository ${this.namespace}/${this.repo}`, accept: [404]})
    if (res.status === 404) return null
    this.repoSeen = true
    return field<OxenRepository>(res.body, 'repository', this.location)
  }

  /** The repository; REMOTE_UNKNOWN ("no such repository") when missing. */
  async getRepo(): Promise<OxenRepository> {
    const repo = await this.findRepo()
    if (!repo) throw this.noSuchRepo()
    return repo
  }

  /**
   * Deletes the repository with every branch, commit and file (DELETE on the repository
   * endpoint, as the official client's `api::client::repositories::delete` sends it). The
   * server answers at once and removes it in a background task, so this waits until reading
   * it answers 404. False when there was no such repository.
   */
  async deleteRepo(options: {waitMs?: number} = {}): Promise<boolean> {
    const what = `delete repository ${this.namespace}/${this.repo}`
    const res = await this.http.json({method: 'DELETE', path: this.base, what, accept: [404]})
    if (res.status === 404) return false
    const deadline = Date.now() + (options.waitMs ?? 120_000)
    for (let wait = 25; await this.findRepo(); wait = Math.min(wait * 2, 2_000)) {
      if (Date.now() > deadline) {
        throw new TilesyncError('REMOTE_PROTOCOL', `${this.location} still exists after the hub accepted its deletion`, {hint: 'the hub deletes in the background; check again in a while'})
      }
      await new Promise((resolve) => setTimeout(resolve, wait))
    }
    this.repoSeen = false
    return true
  }

  /** Creates the (empty) repository; REMOTE_EXISTS when it already exists. */
  async createRepo(options: {description?: string; isPublic?: boolean} = {}): Promise<OxenRepository> {
    const json: Record<string, unknown> = {namespace: this.namespace, name: this.repo}
    if (options.description !== undefined) json.description = options.description
    if (options.isPublic !== undefined) json.is_public = options.isPublic
    try {
      const res = await this.http.json({method: 'POST', path: '/api/repos', json, what: `create repository ${this.namespace}/${this.repo}`, idempotent: false})
      this.repoSeen = true
      return field<OxenRepository>(res.body, 'repository', this.location)
    } catch (err) {
      if (statusOf(err) === 409) {
        throw new TilesyncError('REMOTE_EXISTS', `repository ${this.location} already exists`, {hint: 'push to it, or choose another name'})
      }
      throw err
    }
  }

  // ---- branches and history -----------------------------------------------------------

  async listBranches(): Promise<OxenBranch[]> {
    const res = await this.call({method: 'GET', path: `${this.base}/branches`, what: 'list branches'})
    return arrayField<OxenBranch>(res.body, 'branches', this.location)
  }

  /** The branch, or null when the repository has no branch by that name. */
  async getBranch(name: string): Promise<OxenBranch | null> {
    const res = await this.call({method: 'GET', path: `${this.base}/branches/${encodePath(name)}`, what: `read branch ${name}`, accept: [404]})
    if (res.status === 404) return null
    return field<OxenBranch>(res.body, 'branch', this.location)
  }

  /** Creates `name` from another branch or a commit (the hub answers an existing branch as is). */
  async createBranch(name: string, from: {branch: string} | {commitId: string}): Promise<OxenBranch> {
    const json = 'branch' in from ? {new_name: name, from_name: from.branch} : {new_name: name, commit_id: from.commitId}
    const res = await this.call({method: 'POST', path: `${this.base}/branches`, json, what: `create branch ${name}`}, 'UNKNOWN_REVISION')
    return field<OxenBranch>(res.body, 'branch', this.location)
  }

  /**
   * Deletes a branch; its commits stay (DELETE branches/{name}, as the official client's
   * `api::client::branches::delete` sends it).
   */
  async deleteBranch(name: string): Promise<void> {
    await this.call({method: 'DELETE', path: `${this.base}/branches/${encodePath(name)}`, what: `delete branch ${name}`}, 'UNKNOWN_REVISION')
  }

  /** One commit, or null when the hub has no commit with that id. */
  async getCommit(id: string): Promise<OxenCommit | null> {
    const res = await this.call({method: 'GET', path: `${this.base}/commits/${encodePath(id)}`, what: `read commit ${id}`, accept: [404]})
    if (res.status === 404) return null
    return field<OxenCommit>(res.body, 'commit', this.location)
  }

  /** Every commit reachable from `revision`, newest first, all pages. */
  async history(revision: string): Promise<OxenCommit[]> {
    return this.allPages((page) => ({
      method: 'GET', path: `${this.base}/commits/history/${encodePath(revision)}`, query: {page, page_size: 100}, what: `read history of ${revision}`,
    }), 'commits', 'UNKNOWN_REVISION')
  }

  // ---- reading files ------------------------------------------------------------------

  /** The entries directly inside `dir` ('' for the root) at `revision`, all pages. */
  async listDir(revision: string, dir = ''): Promise<OxenEntry[]> {
    const path = `${this.base}/dir/${encodePath(revision)}${dir ? `/${encodePath(dir)}` : ''}`
    return this.allPages((page) => ({method: 'GET', path, query: {page, page_size: 100}, what: `list ${dir || '/'} at ${revision}`}), 'entries', 'OBJECT_MISSING')
  }

  /** Metadata of one file or directory (its xxh3 `hash`, `size`), or null when absent. */
  async getEntry(revision: string, path: string): Promise<OxenEntry | null> {
    const res = await this.call({method: 'GET', path: `${this.base}/meta/${encodePath(revision)}/${encodePath(path)}`, what: `read metadata of ${path} at ${revision}`, accept: [404]})
    if (res.status === 404) return null
    return field<OxenEntry>(res.body, 'entry', this.location)
  }

  /** The raw bytes of `path` at `revision`. OBJECT_MISSING when there is no such file. */
  async downloadFile(revision: string, path: string): Promise<Buffer> {
    const req: OxenRequest = {method: 'GET', path: `${this.base}/file/${encodePath(revision)}/${encodePath(path)}`, what: `download ${path} at ${revision}`}
    try {
      const res = await this.http.bytes(req)
      this.repoSeen = true
      return res.bytes
    } catch (err) {
      throw await this.refineNotFound(err, 'OBJECT_MISSING')
    }
  }

  /** Whether the hub holds a blob with this xxh3-128 hash anywhere in the repository. */
  async versionExists(hash: string): Promise<boolean> {
    const res = await this.call({method: 'GET', path: `${this.base}/versions/${encodeURIComponent(hash)}/metadata`, what: `look up version ${hash}`, accept: [404]})
    return res.status !== 404
  }

  // ---- writing through a workspace ----------------------------------------------------

  /**
   * Gets or creates workspace `id` on `branch`. On an empty repository the hub makes the
   * first commit on `branch`. Without `name` the workspace is deleted after its commit.
   */
  async createWorkspace(branch: string, id: string, options: {name?: string} = {}): Promise<OxenWorkspace> {
    const json: Record<string, unknown> = {workspace_id: id, branch_name: branch}
    if (options.name !== undefined) json.name = options.name
    const res = await this.call({method: 'PUT', path: `${this.base}/workspaces`, json, what: `open a workspace on ${branch}`}, 'UNKNOWN_REVISION')
    return field<OxenWorkspace>(res.body, 'workspace', this.location)
  }

  /**
   * Stages files under `dir` ('' for the root) in batches of about `batchBytes`, each part
   * gzipped, `concurrency` requests at a time. Files the hub leaves out of its `paths` answer
   * are sent again, up to `uploadTries` rounds. Holds the given buffers only: callers with
   * many files call it once per slice.
   */
  async uploadFiles(workspaceId: string, dir: string, files: OxenUploadFile[], options: {onProgress?: (done: UploadResult) => void} = {}): Promise<UploadResult> {
    if (dir !== '') checkPath(dir)
    const unique = new Map<string, OxenUploadFile>()
    for (const f of files) {
      checkPath(f.path)
      if (f.bytes.length > this.maxFileBytes) {
        throw new TilesyncError('TRANSFER_FAILED', `${joinPath(dir, f.path)} is ${(f.bytes.length / MiB).toFixed(1)} MiB; a workspace upload takes at most ${(this.maxFileBytes / MiB).toFixed(0)} MiB per file`)
      }
      unique.set(f.path, f)
    }
    const done: UploadResult = {files: 0, bytes: 0, requests: 0}
    let pending = [...unique.values()]
    for (let round = 1; pending.length > 0; round++) {
      if (round > this.uploadTries) {
        const sample = pending.slice(0, 3).map((f) => joinPath(dir, f.path)).join(', ')
        throw new TilesyncError('TRANSFER_FAILED', `${this.host} did not stage ${pending.length} of ${unique.size} files after ${this.uploadTries} tries (${sample}${pending.length > 3 ? ', ...' : ''})`, {
          hint: 'retry the push; files already staged are not sent again',
          data: {missing: pending.map((f) => joinPath(dir, f.path))},
        })
      }
      const limit = pLimit(this.concurrency)
      const staged = new Set<string>()
      const batches = planUploadBatches(pending, this.batchBytes)
      try {
        await Promise.all(batches.map((batch) => limit(async () => {
          const paths = await this.uploadBatch(workspaceId, dir, batch, done)
          for (const p of paths) staged.add(p)
          const accepted = batch.filter((f) => staged.has(f.path))
          done.files += accepted.length
          done.bytes += accepted.reduce((n, f) => n + f.bytes.length, 0)
          options.onProgress?.({...done})
        })))
      } catch (err) {
        limit.clearQueue()
        throw err
      }
      pending = pending.filter((f) => !staged.has(f.path))
    }
    return done
  }

  /** Stages removals. Returns the paths the hub did not find (HTTP 206). */
  async removeFiles(workspaceId: string, paths: string[]): Promise<{notFound: string[]}> {
    for (const p of paths) checkPath(p)
    if (paths.length === 0) return {notFound: []}
    const res = await this.call({
      method: 'DELETE', path: `${this.base}/workspaces/${encodeURIComponent(workspaceId)}/files`, json: paths, what: `stage removal of ${paths.length} files`, accept: [206],
    })
    if (res.status !== 206) return {notFound: []}
    const notFound = res.body.paths
    return {notFound: Array.isArray(notFound) ? notFound.map(String) : []}
  }

  /** What the workspace has staged, relative to its base commit (all pages). */
  async workspaceChanges(workspaceId: string): Promise<OxenChanges> {
    const out: OxenChanges = {added: [], modified: [], removed: []}
    for (let page = 1; ; page++) {
      const res = await this.call({method: 'GET', path: `${this.base}/workspaces/${encodeURIComponent(workspaceId)}/changes`, query: {page, page_size: 100}, what: 'read workspace changes'})
      const staged = (res.body.staged ?? {}) as Record<string, {entries?: Array<{filename?: string}>; total_pages?: number}>
      let pages = 1
      for (const [key, list] of [['added_files', out.added], ['modified_files', out.modified], ['removed_files', out.removed]] as const) {
        const part = staged[key]
        for (const e of part?.entries ?? []) if (typeof e.filename === 'string') list.push(e.filename)
        pages = Math.max(pages, Number(part?.total_pages ?? 1))
      }
      if (page >= pages) return out
    }
  }

  /**
   * Commits the workspace onto `branch` and returns the new commit. REMOTE_MOVED when the
   * branch moved and a staged file also changed there (409, "pull first"); NOTHING_TO_COMMIT
   * when the hub finds no change. Not retried after a failure where it may have landed.
   */
  async commitWorkspace(workspaceId: string, branch: string, commit: NewOxenCommit): Promise<OxenCommit> {
    const req: OxenRequest = {
      method: 'POST', path: `${this.base}/workspaces/${encodeURIComponent(workspaceId)}/merge/${encodePath(branch)}`,
      json: {message: commit.message, author: commit.author, email: commit.email}, what: `commit to ${branch}`, idempotent: false,
    }
    try {
      const res = await this.http.json(req)
      this.repoSeen = true
      return field<OxenCommit>(res.body, 'commit', this.location)
    } catch (err) {
      const status = statusOf(err)
      if (status === 409) {
        throw new TilesyncError('REMOTE_MOVED', `hub branch ${branch} moved / workspace is behind: pull first`, {
          hint: 'run pull, then push again', data: {status},
        })
      }
      if (status === 422) {
        const detail = String((err as TilesyncError).data?.serverMessage ?? '')
        if (!detail || /nothing|no changes|no_changes/i.test(detail)) {
          throw new TilesyncError('NOTHING_TO_COMMIT', `nothing to commit to ${branch} on ${this.host}: the workspace has no changes`, {data: {status}})
        }
        throw new TilesyncError('REMOTE_PROTOCOL', `${this.host} could not commit to ${branch} (HTTP 422): ${detail}`, {data: {status}})
      }
      throw await this.refineNotFound(err, 'UNKNOWN_REVISION')
    }
  }

  /** Deletes the workspace; one already gone (committed unnamed workspaces are) is fine. */
  async deleteWorkspace(workspaceId: string): Promise<void> {
    await this.call({method: 'DELETE', path: `${this.base}/workspaces/${encodeURIComponent(workspaceId)}`, what: 'delete workspace', accept: [404]})
  }

  // ---- internals ----------------------------------------------------------------------

  /** One gzipped multipart request; answers the staged paths relative to `dir`. */
  private async uploadBatch(workspaceId: string, dir: string, batch: OxenUploadFile[], done: UploadResult): Promise<string[]> {
    const parts = await Promise.all(batch.map(async (f) => ({
      name: 'file[]', filename: f.path, contentType: 'application/gzip', data: await gzip(f.bytes, {level: 1}),
    })))
    const {body, contentType} = encodeMultipart(parts)
    const path = `${this.base}/workspaces/${encodeURIComponent(workspaceId)}/files/${dir ? encodePath(dir) : ''}`
    let res
    try {
      done.requests++
      res = await this.call({method: 'POST', path, body, contentType, what: `upload ${batch.length} files`})
    } catch (err) {
      // Too large for the hub after all: halve the batch rather than fail the push.
      if (statusOf(err) === 413 && batch.length > 1) {
        const mid = Math.ceil(batch.length / 2)
        const a = await this.uploadBatch(workspaceId, dir, batch.slice(0, mid), done)
        const b = await this.uploadBatch(workspaceId, dir, batch.slice(mid), done)
        return [...a, ...b]
      }
      throw err
    }
    const paths = res.body.paths
    if (!Array.isArray(paths)) return []
    const wanted = new Set(batch.map((f) => f.path))
    const prefix = dir ? `${dir.replace(/\/+$/, '')}/` : ''
    const staged: string[] = []
    for (const raw of paths) {
      // The hub may answer paths relative to the repository root or to `dir`.
      const p = String(raw).replace(/\\/g, '/').replace(/^\.?\//, '')
      if (prefix && p.startsWith(prefix) && wanted.has(p.slice(prefix.length))) staged.push(p.slice(prefix.length))
      else if (wanted.has(p)) staged.push(p)
    }
    return staged
  }

  /** A JSON call on the repository; a 404 not accepted by the caller is refined. */
  private async call(req: OxenRequest, notFound: ErrorCode = 'OBJECT_MISSING') {
    try {
      const res = await this.http.json(req)
      if (res.status === 404) {
        // An accepted 404 still needs the repository to exist to mean "no such thing".
        if (!this.repoSeen && !(await this.findRepo())) throw this.noSuchRepo()
      } else {
        this.repoSeen = true
      }
      return res
    } catch (err) {
      throw await this.refineNotFound(err, notFound)
    }
  }

  /** Turns a 404 into "no such repository" or into `code` naming what was missing. */
  private async refineNotFound(err: unknown, code: ErrorCode): Promise<unknown> {
    if (statusOf(err) !== 404 || isTilesyncError(err, 'REMOTE_UNKNOWN')) return err
    if (!this.repoSeen && !(await this.findRepo())) return this.noSuchRepo()
    const e = err as TilesyncError
    return new TilesyncError(code, `${this.location}: ${e.message}`, {data: e.data})
  }

  private noSuchRepo(): TilesyncError {
    return new TilesyncError('REMOTE_UNKNOWN', `no such repository ${this.namespace}/${this.repo} on ${this.host}`, {
      hint: 'check the name, or create it (push creates it when asked to)',
      data: {status: 404},
    })
  }

  private async allPages<T>(request: (page: number) => OxenRequest, key: string, notFound: ErrorCode): Promise<T[]> {
    const out: T[] = []
    for (let page = 1; ; page++) {
      const res = await this.call(request(page), notFound)
      const items = arrayField<T>(res.body, key, this.location)
      out.push(...items)
      const total = Number(res.body.total_pages)
      if (Number.isFinite(total) ? page >= total : items.length < 100) return out
      if (items.length === 0) return out
    }
  }
}

function statusOf(err: unknown): number | undefined {
  return isTilesyncError(err) ? (err.data?.status as number | undefined) : undefined
}

function field<T>(body: Record<string, unknown>, key: string, where: string): T {
  const v = body[key]
  if (!v || typeof v !== 'object') {
    throw new TilesyncError('REMOTE_PROTOCOL', `${where}: the hub's answer has no "${key}"`, {hint: 'the hub may run an incompatible version'})
  }
  return v as T
}

function arrayField<T>(body: Record<string, unknown>, key: string, where: string): T[] {
  const v = body[key]
  if (!Array.isArray(v)) {
    throw new TilesyncError('REMOTE_PROTOCOL', `${where}: the hub's answer has no "${key}" list`, {hint: 'the hub may run an incompatible version'})
  }
  return v as T[]
}

/** Percent-encodes each segment of a `/`-separated path or branch name. */
export function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/')
}

function joinPath(dir: string, p: string): string {
  return dir ? `${dir.replace(/\/+$/, '')}/${p}` : p
}

function checkPath(p: string): void {
  const why = badUploadPath(p)
  if (why) throw new TilesyncError('HOSTILE_PATH', `refusing to send "${p.slice(0, 200)}" to the hub: ${why}`)
}

function checkName(name: string, what: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name ?? '')) {
    throw new TilesyncError('BAD_NAME', `"${name}" is not a valid oxen ${what} name`, {hint: 'use letters, digits, "_", "." and "-", starting with a letter or digit'})
  }
}

let userAgent: string | undefined

/** tilesync/VERSION: never "Oxen/...", which the hub's old-client gate answers with 426. */
export function defaultUserAgent(): string {
  if (!userAgent) {
    let version = '0.0.0'
    try {
      // dist/src/remote/oxen/ -> package root
      version = (createRequire(import.meta.url)('../../../../package.json') as {version?: string}).version ?? version
    } catch {
      // running from an unusual layout: the version is informative only
    }
    userAgent = `tilesync/${version} (node ${process.versions.node})`
  }
  return userAgent
}
