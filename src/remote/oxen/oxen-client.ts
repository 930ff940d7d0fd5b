import {createRequire} from 'node:module'
import {promisify} from 'node:util'
import * as zlib from 'node:zlib'
import pLimit from 'p-limit'

import {isTilesyncError, TilesyncError, type ErrorCode} from '../../core/errors.js'
import {resolveOxenToken} from './oxen-auth.js'
import {OxenHttp, type OxenRequest, type OxenRetryEvent} from './oxen-http.js'
import {DEFAULT_OXEN_HOST, resolveOxenOrigin} from './oxen-origin.js'
import type {NewOxenCommit, OxenBranch, OxenChanges, OxenCommit, OxenEntry, OxenRepository, OxenUploadFile, OxenWorkspace} from './oxen-types.js'
import {xxh3_128Hex} from '../../dataset/xxh3.js'
import {encodeMultipart} from './multipart.js'
import {badUploadPath, planUploadBatches} from './upload-batches.js'

const gzip = promisify(zlib.gzip)
const MiB = 1024 * 1024
const CHANGES_PAGE = 1_000_000

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
  /**
   * Largest file sent as a gzipped multipart part (default 10 MiB: the hub inflates a part to
   * at most that and silently drops a bigger one). Larger files go through the chunk API.
   */
  maxFileBytes?: number
  /** Chunk size of the chunk API (default 10 MiB, the official client's stream_segment_size). */
  chunkBytes?: number
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
  private readonly chunkBytes: number
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
    this.maxFileBytes = Math.min(options.maxFileBytes ?? 10 * MiB, 10 * MiB)
    this.chunkBytes = Math.max(1, options.chunkBytes ?? 10 * MiB)
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

  /**
   * Creates `name` from another branch or a commit. From a branch, an existing `name` is
   * answered as it is; from a commit, the hub answers a generic 500 for an existing name
   * (srv/controllers/branches.rs create_from_commit), which becomes REF_EXISTS here, as an
   * unknown commit becomes UNKNOWN_REVISION and a refused name BAD_NAME.
   */
  async createBranch(name: string, from: {branch: string} | {commitId: string}): Promise<OxenBranch> {
    const json = 'branch' in from ? {new_name: name, from_name: from.branch} : {new_name: name, commit_id: from.commitId}
    // Not retried on a 500: that is how the hub says "already exists", not an outage.
    const res = await this.call({method: 'POST', path: `${this.base}/branches`, json, what: `create branch ${name}`, accept: [500]}, 'UNKNOWN_REVISION')
    if (res.status === 500) {
      const said = this.http.serverMessage(res.body)
      if (/already exists/i.test(said)) {
        throw new TilesyncError('REF_EXISTS', `hub branch ${name} already exists on ${this.location}`, {hint: 'someone created it meanwhile: fetch, then push again', data: {status: 500, serverMessage: said}})
      }
      if (/could not find commit/i.test(said)) {
        throw new TilesyncError('UNKNOWN_REVISION', `${this.location} has no commit ${'commitId' in from ? from.commitId.slice(0, 12) : ''} to start branch ${name} from`, {hint: 'fetch the remote, then push again', data: {status: 500, serverMessage: said}})
      }
      if (/not a valid branch name/i.test(said)) {
        throw new TilesyncError('BAD_NAME', `the hub refuses "${name}" as a branch name`, {hint: 'oxen branch names may not contain "..", "~", "^", ":", "?", "[", "*", "\\", spaces or "@{"', data: {status: 500, serverMessage: said}})
      }
      throw new TilesyncError('REMOTE_UNREACHABLE', `${this.host} failed to create branch ${name}: HTTP 500${said ? `: ${said}` : ''}`, {hint: 'retry later', data: {status: 500, serverMessage: said}})
    }
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
    // As the official client's workspaces::create_with_path sends it; the open-source server
    // reads only workspace_id, branch_name and name, the hosted hub may read the rest.
    const json: Record<string, unknown> = {workspace_id: id, branch_name: branch, resource_path: '/', entity_type: 'user', name: options.name ?? null, force: true}
    try {
      const res = await this.call({method: 'PUT', path: `${this.base}/workspaces`, json, what: `open a workspace on ${branch}`}, 'UNKNOWN_REVISION')
      return field<OxenWorkspace>(res.body, 'workspace', this.location)
    } catch (err) {
      // srv/controllers/workspaces.rs get_or_create: a missing branch of a non-empty repository is a 400.
      const said = String((err as TilesyncError).data?.serverMessage ?? '')
      if (statusOf(err) === 400 && /branch not found/i.test(said)) {
        throw new TilesyncError('REF_MISSING', `hub branch ${branch} does not exist on ${this.location}; the hub opens workspaces only on existing branches`, {
          hint: 'create the branch first (push does), then push again', data: {status: 400, serverMessage: said},
        })
      }
      throw err
    }
  }

  /**
   * The steps the official client takes around a push (POST workspaces/{id}/validate,
   * action/started|completed/push_workspace, commits/{id}/complete). The open-source server
   * only answers them; a hub without them (404, 405) or failing them is no reason to stop.
   */
  async validateWorkspace(workspaceId: string, size: number): Promise<void> {
    await this.courtesy({method: 'POST', path: `${this.base}/workspaces/${encodeURIComponent(workspaceId)}/validate`, json: {size}, what: 'validate the workspace'})
  }

  async reportAction(state: 'started' | 'completed', action: string): Promise<void> {
    await this.courtesy({method: 'POST', path: `${this.base}/action/${state}/${encodeURIComponent(action)}`, json: {}, what: `report ${action} ${state}`})
  }

  async completeCommit(commitId: string, branch: {name: string; commit_id: string}): Promise<void> {
    await this.courtesy({method: 'POST', path: `${this.base}/commits/${encodeURIComponent(commitId)}/complete`, json: {branch}, what: `complete commit ${commitId.slice(0, 10)}`})
  }

  /**
   * What committing the workspace onto `branch` would meet (GET workspaces/{id}/merge/{branch}):
   * the commits the branch gained since the workspace's base and the conflicting paths. null
   * when the hub does not answer it (older or other servers): the caller checks afterwards.
   */
  async mergeability(workspaceId: string, branch: string): Promise<{mergeable: boolean; conflicts: string[]; commits: OxenCommit[]} | null> {
    try {
      const res = await this.http.json({method: 'GET', path: `${this.base}/workspaces/${encodeURIComponent(workspaceId)}/merge/${encodePath(branch)}`, what: `check the workspace against ${branch}`})
      if (!Array.isArray(res.body.commits)) return null
      const conflicts = Array.isArray(res.body.conflicts) ? (res.body.conflicts as Array<{path?: unknown}>).map((c) => String(c?.path ?? '')) : []
      return {mergeable: res.body.is_mergeable !== false && conflicts.length === 0, conflicts, commits: res.body.commits as OxenCommit[]}
    } catch (err) {
      if (isTilesyncError(err, 'REMOTE_AUTH')) throw err
      return null
    }
  }

  /**
   * Deletes the whole repository (DELETE /api/repos/{namespace}/{repo}, as the official
   * client's api::client::repositories::delete sends it). One already gone is fine.
   */
  async deleteRepo(): Promise<void> {
    await this.http.json({method: 'DELETE', path: this.base, what: `delete repository ${this.namespace}/${this.repo}`, accept: [404], idempotent: false})
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
    const large: OxenUploadFile[] = []
    const done: UploadResult = {files: 0, bytes: 0, requests: 0}
    for (const f of files) {
      checkPath(f.path)
      unique.set(f.path, f)
    }
    // A gzipped part inflating past 10 MiB is dropped by the hub with HTTP 200 (files.rs
    // save_parts, decompress_gzip_capped): larger files go through the chunk API instead, as
    // the official client's upload_multiple_files sends them.
    for (const f of [...unique.values()]) {
      if (f.bytes.length > this.maxFileBytes) {
        large.push(f)
        unique.delete(f.path)
      }
    }
    for (const f of large) {
      await this.uploadLarge(workspaceId, joinPath(dir, f.path), f.bytes, done)
      done.files++
      done.bytes += f.bytes.length
      options.onProgress?.({...done})
    }
    let pending = [...unique.values()]
    for (let round = 1; pending.length > 0; round++) {
      if (round > this.uploadTries) {
        const sample = pending.slice(0, 3).map((f) => joinPath(dir, f.path)).join(', ')
        throw new TilesyncError('TRANSFER_FAILED', `${this.host} did not stage ${pending.length} of ${unique.size + large.length} files after ${this.uploadTries} tries (${sample}${pending.length > 3 ? ', ...' : ''})`, {
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

  /**
   * One file through the chunk API (srv/controllers/versions/chunks.rs): `versions/{hash}/create`,
   * the raw chunks by offset (`PUT versions/{hash}/chunks?offset=N`, in parallel), then
   * `versions/{hash}/complete`, which checks the XXH3-128 of the whole and stages it at
   * `path` in the workspace. The hash goes unpadded: the hub stores the blob under the string
   * as given and the tree looks it up unpadded.
   */
  async uploadLarge(workspaceId: string, path: string, bytes: Buffer, done: UploadResult = {files: 0, bytes: 0, requests: 0}): Promise<void> {
    checkPath(path)
    const hash = xxh3_128Hex(bytes)
    const slash = path.lastIndexOf('/')
    const fileName = path.slice(slash + 1)
    const dstDir = slash < 0 ? null : path.slice(0, slash)
    const versions = `${this.base}/versions/${encodeURIComponent(hash)}`
    done.requests++
    await this.call({method: 'POST', path: `${versions}/create`, json: {hash, file_name: fileName, size: bytes.length, dst_dir: dstDir}, what: `start the upload of ${path}`})
    const count = Math.max(1, Math.ceil(bytes.length / this.chunkBytes))
    const limit = pLimit(Math.min(this.concurrency, 4))
    try {
      await Promise.all(Array.from({length: count}, (_, i) => limit(async () => {
        done.requests++
        const offset = i * this.chunkBytes
        // Raw bytes, no Content-Type; a chunk the hub already holds at that offset is kept by it.
        await this.call({method: 'PUT', path: `${versions}/chunks`, query: {offset}, body: bytes.subarray(offset, offset + this.chunkBytes), what: `upload chunk ${i + 1}/${count} of ${path}`})
      })))
    } catch (err) {
      limit.clearQueue()
      throw err
    }
    done.requests++
    try {
      await this.call({
        method: 'POST', path: `${versions}/complete`, what: `finish the upload of ${path}`,
        json: {files: [{hash, file_name: fileName, dst_dir: dstDir, num_chunks: count}], workspace_id: workspaceId},
      })
    } catch (err) {
      const said = String((err as TilesyncError).data?.serverMessage ?? '')
      if (/hash mismatch/i.test(said)) {
        throw new TilesyncError('TRANSFER_FAILED', `${this.host} put together ${path} from its chunks with the wrong content (${said.slice(0, 160)})`, {
          hint: 'the hub keeps the damaged chunks of that file: ask the hub\'s operator to remove them, then push again', data: {status: statusOf(err), serverMessage: said},
        })
      }
      if (/workspace not found/i.test(said)) {
        throw new TilesyncError('TRANSFER_FAILED', `the workspace of this push is gone from ${this.host} (${path} was uploaded but not staged)`, {hint: 'push again', data: {status: statusOf(err), serverMessage: said}})
      }
      throw err
    }
  }

  /** A request the official client makes and the hub may lack: failures are ignored, except a refused token. */
  private async courtesy(req: OxenRequest): Promise<void> {
    try {
      await this.http.json({...req, accept: [404, 405, 501]})
    } catch (err) {
      if (isTilesyncError(err, 'REMOTE_AUTH')) throw err
    }
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
      // The hub builds these lists from a HashMap: the order changes between calls, so paging
      // could skip or repeat paths. One page large enough for any push avoids that.
      const res = await this.call({method: 'GET', path: `${this.base}/workspaces/${encodeURIComponent(workspaceId)}/changes`, query: {page, page_size: CHANGES_PAGE}, what: 'read workspace changes'})
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
      // srv/controllers/workspaces.rs commit, its failures in the order it checks them.
      const status = statusOf(err)
      const detail = String((err as TilesyncError).data?.serverMessage ?? '')
      if (status === 409) {
        throw new TilesyncError('REMOTE_MOVED', `hub branch ${branch} moved / workspace is behind: pull first`, {
          hint: 'run pull, then push again', data: {status, serverMessage: detail},
        })
      }
      if (status === 422) {
        // OxenError::NoChanges, written with {:?}: "NoChanges" (older servers: "nothing to commit").
        if (!detail || /nochanges|nothing|no changes|no_changes/i.test(detail.replace(/\s+/g, ''))) {
          throw new TilesyncError('NOTHING_TO_COMMIT', `nothing to commit to ${branch} on ${this.host}: the workspace has no changes`, {data: {status, serverMessage: detail}})
        }
        throw new TilesyncError('REMOTE_PROTOCOL', `${this.host} could not commit to ${branch} (HTTP 422): ${detail}`, {data: {status, serverMessage: detail}})
      }
      if (status === 404 && /workspace not found/i.test(detail)) {
        throw new TilesyncError('TRANSFER_FAILED', `the workspace of this push is gone from ${this.host}; nothing was committed`, {hint: 'push again', data: {status, serverMessage: detail}})
      }
      // A missing branch is a 404 whose status_description is the bare branch name.
      if (status === 404 && detail === branch) {
        throw new TilesyncError('REF_MISSING', `hub branch ${branch} no longer exists on ${this.location}; nothing was committed`, {
          hint: 'it was deleted during the push: push again to create it', data: {status, serverMessage: detail},
        })
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
