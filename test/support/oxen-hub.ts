import {randomBytes} from 'node:crypto'
import * as http from 'node:http'
import type {AddressInfo} from 'node:net'
import * as zlib from 'node:zlib'

import {xxh3_128Hex} from '../../src/dataset/xxh3.js'

/**
 * A test oxen hub: a real HTTP server on 127.0.0.1 that keeps repositories, branches, commits
 * with full file trees, workspaces and chunked uploads in memory, and answers as the real
 * server (Oxen-AI/Oxen v0.54.0, crates/oxen-server) does: the same routes, status codes, JSON
 * envelopes and quirks, each behaviour citing the server function it copies ("srv" =
 * crates/oxen-server/src, "lib" = crates/liboxen/src). Tests drive it through OxenClient or
 * plain fetch, and inspect it through the hooks on OxenHub (request log, fault injection,
 * branch state).
 */

export interface OxenHubOptions {
  /** The only bearer token accepted (default: a fixed test token). */
  token?: string
}

/** One-shot failure: the next matching request gets this answer instead of being served. */
export interface OxenHubFault {
  method?: string
  /** Matched against the decoded path (substring or RegExp). */
  path?: string | RegExp
  status: number
  /** An object is sent as JSON; a string as is (text/html unless headers say otherwise). */
  body?: unknown
  headers?: Record<string, string>
  /** How many matching requests fail (default 1). */
  times?: number
}

export interface HubRequest {
  method: string
  path: string
  status: number
  /** For workspace uploads: each part's filename, Content-Type and size on the wire. */
  parts?: Array<{filename?: string; contentType?: string; size: number}>
  /** A JSON request body (small ones), as parsed: what the client sent. */
  json?: unknown
  /** For raw chunk uploads: the body size. */
  bodyBytes?: number
}

export interface HubCommitView {
  id: string
  parent_ids: string[]
  message: string
  author: string
  email: string
  timestamp: string
}

export interface OxenHub {
  /** http://127.0.0.1:PORT */
  readonly url: string
  /** 127.0.0.1:PORT, as an OxenClient `host` and an auth_config.toml `host`. */
  readonly host: string
  readonly token: string
  /** Every request in arrival order, with the status it got. */
  readonly requests: HubRequest[]
  /** File parts received by workspace uploads (after any dropped ones). */
  uploadedFiles: number
  /** Requests matching `method` (any when omitted) and a path pattern. */
  count(method?: string, path?: string | RegExp): number
  /** Forgets the request log and the upload counter. */
  resetLog(): void
  /** Queues a failure for the next matching request(s). */
  failNext(fault: OxenHubFault): void
  /** Runs `action` just before the next matching request is served (another user acting meanwhile). */
  beforeNext(match: {method?: string; path?: string | RegExp}, action: () => void): void
  /** The next workspace upload stages all but its last `n` files and leaves them out of `paths`. */
  dropNextUploads(n: number): void
  /** Files at the head of `branch` (path -> bytes), or null when there is no such repo or branch. */
  files(namespace: string, repo: string, branch?: string): Map<string, Buffer> | null
  /** The head commit of `branch`, or null. */
  head(namespace: string, repo: string, branch?: string): HubCommitView | null
  /** Creates a repository directly (as another user would). */
  createRepo(namespace: string, repo: string): void
  /** Commits changes straight onto `branch` (null removes a path), as another user's push would. */
  commitDirect(namespace: string, repo: string, branch: string, changes: Record<string, Buffer | null>, message?: string): HubCommitView
  /** Replaces what the hub serves for a committed file, keeping its recorded hash and size (storage damage). */
  tamperFile(namespace: string, repo: string, path: string, bytes: Buffer, branch?: string): void
  /** Open workspaces in a repository. */
  workspaceCount(namespace: string, repo: string): number
  /** Gzipped parts the upload route dropped because they inflate past 10 MiB (answered 200, missing from `paths`). */
  readonly oversizeDropped: number
  close(): Promise<void>
}

export const OXEN_HUB_TEST_TOKEN = 'hub-test-token-7f3a9c'

interface HubFile {
  hash: string
  size: number
  bytes: Buffer
  /** Staged under a hash string the tree cannot find again (a zero-padded chunk upload): reads fail. */
  lost?: boolean
}

type Tree = Map<string, HubFile>

interface HubCommit extends HubCommitView {
  seq: number
  tree: Tree
}

interface HubWorkspace {
  id: string
  name: string | null
  base: string
  staged: Map<string, HubFile | null>
  createdAt: string
}

interface HubRepo {
  namespace: string
  name: string
  description: string
  isPublic: boolean
  commits: Map<string, HubCommit>
  branches: Map<string, string>
  workspaces: Map<string, HubWorkspace>
  blobs: Map<string, number>
  /** Chunked uploads in progress: hash string as given -> offset -> bytes. */
  chunks: Map<string, Map<number, Buffer>>
}

class HttpAnswer {
  constructor(readonly status: number, readonly body: unknown, readonly headers: Record<string, string> = {}) {}
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/
/** lib/util/compression.rs decompress_gzip_capped: the most a gzipped part may inflate to (exactly this is allowed). */
const PART_LIMIT = 10 * 1024 * 1024
/** lib/core/refs/ref_manager.rs: what a branch name may not contain. */
const BAD_BRANCH = /\.\.|[~^:?[*\\ ]|@\{/

export async function startOxenHub(options: OxenHubOptions = {}): Promise<OxenHub> {
  const token = options.token ?? OXEN_HUB_TEST_TOKEN
  const repos = new Map<string, HubRepo>()
  const requests: HubRequest[] = []
  const faults: Array<OxenHubFault & {left: number}> = []
  const hooks: Array<{method?: string; path?: string | RegExp; action: () => void}> = []
  let dropUploads = 0
  let seq = 0
  let lastTime = 0
  const state = {uploadedFiles: 0, oversizeDropped: 0}

  // ---- model ---------------------------------------------------------------------------

  const repoKey = (ns: string, name: string) => `${ns}/${name}`

  function newRepo(ns: string, name: string, description = '', isPublic = false): HubRepo {
    const r: HubRepo = {namespace: ns, name, description, isPublic, commits: new Map(), branches: new Map(), workspaces: new Map(), blobs: new Map(), chunks: new Map()}
    repos.set(repoKey(ns, name), r)
    return r
  }

  function makeCommit(repo: HubRepo, parents: string[], tree: Tree, body: {message: string; author: string; email: string}): HubCommit {
    const now = Math.max(Date.now(), lastTime + 1)
    lastTime = now
    const c: HubCommit = {
      id: randomBytes(16).toString('hex'), parent_ids: parents, message: body.message, author: body.author, email: body.email,
      timestamp: new Date(now).toISOString(), seq: ++seq, tree,
    }
    repo.commits.set(c.id, c)
    for (const f of tree.values()) repo.blobs.set(f.hash, f.size)
    return c
  }

  const commitView = (c: HubCommit): HubCommitView => ({id: c.id, parent_ids: [...c.parent_ids], message: c.message, author: c.author, email: c.email, timestamp: c.timestamp})

  const fileOf = (bytes: Buffer): HubFile => ({hash: xxh3_128Hex(bytes), size: bytes.length, bytes})

  function workspaceTree(repo: HubRepo, ws: HubWorkspace): Tree {
    const tree = new Map(repo.commits.get(ws.base)!.tree)
    for (const [p, f] of ws.staged) {
      if (f) tree.set(p, f)
      else tree.delete(p)
    }
    return tree
  }

  /** lib/core/v_latest/workspaces: `workspaces::get` tries the key as an id, then as a name. */
  function findWorkspace(repo: HubRepo, key: string): HubWorkspace | undefined {
    return repo.workspaces.get(key) ?? [...repo.workspaces.values()].find((w) => w.name === key)
  }

  /**
   * lib/core/v_latest/resource.rs parse_resource_from_path: the first segment as a commit id,
   * then the longest prefix naming a branch, then the first segment as a workspace id or name.
   */
  function resolveResource(repo: HubRepo, segments: string[]): {tree: Tree; commit: HubCommit; path: string; workspace?: HubWorkspace} | null {
    const byId = repo.commits.get(segments[0] ?? '')
    if (byId) return {tree: byId.tree, commit: byId, path: segments.slice(1).join('/')}
    for (let i = segments.length; i >= 1; i--) {
      const head = repo.branches.get(segments.slice(0, i).join('/'))
      if (head) {
        const commit = repo.commits.get(head)!
        return {tree: commit.tree, commit, path: segments.slice(i).join('/')}
      }
    }
    const ws = findWorkspace(repo, segments[0] ?? '')
    if (ws) return {tree: workspaceTree(repo, ws), commit: repo.commits.get(ws.base)!, path: segments.slice(1).join('/'), workspace: ws}
    return null
  }

  function latestCommit(repo: HubRepo, from: HubCommit, path: string): HubCommitView | null {
    const hash = from.tree.get(path)?.hash
    if (!hash) return null
    let latest = from
    for (;;) {
      const parent = repo.commits.get(latest.parent_ids[0] ?? '')
      if (!parent || parent.tree.get(path)?.hash !== hash) return commitView(latest)
      latest = parent
    }
  }

  function fileEntry(repo: HubRepo, commit: HubCommit, tree: Tree, path: string) {
    const f = tree.get(path)!
    const name = path.split('/').pop()!
    const ext = name.includes('.') ? name.split('.').pop()!.toLowerCase() : ''
    return {
      filename: name, hash: f.hash, is_dir: false, size: f.size, latest_commit: latestCommit(repo, commit, path),
      data_type: dataType(ext), mime_type: mimeType(ext), extension: ext, resource: null, metadata: null,
    }
  }

  function dirEntry(tree: Tree, dir: string) {
    const prefix = dir ? `${dir}/` : ''
    const under = [...tree.entries()].filter(([p]) => p.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : 1))
    const hash = xxh3_128Hex(Buffer.from(under.map(([p, f]) => `${p}:${f.hash}`).join('\n')))
    return {
      filename: dir.split('/').pop() ?? '', hash, is_dir: true, size: under.reduce((n, [, f]) => n + f.size, 0),
      latest_commit: null, data_type: 'dir', mime_type: 'inode/directory', extension: '', resource: null, metadata: null,
    }
  }

  const isDir = (tree: Tree, dir: string) => dir === '' || [...tree.keys()].some((p) => p.startsWith(`${dir}/`))

  function history(repo: HubRepo, from: HubCommit): HubCommit[] {
    const seen = new Map<string, HubCommit>()
    const stack = [from]
    while (stack.length) {
      const c = stack.pop()!
      if (seen.has(c.id)) continue
      seen.set(c.id, c)
      for (const p of c.parent_ids) {
        const pc = repo.commits.get(p)
        if (pc) stack.push(pc)
      }
    }
    return [...seen.values()].sort((a, b) => b.seq - a.seq)
  }

  function changesOf(repo: HubRepo, ws: HubWorkspace): Array<{path: string; file: HubFile | null; kind: 'added' | 'modified' | 'removed'}> {
    const base = repo.commits.get(ws.base)!.tree
    const out: Array<{path: string; file: HubFile | null; kind: 'added' | 'modified' | 'removed'}> = []
    for (const [path, file] of [...ws.staged.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const old = base.get(path)
      if (file && !old) out.push({path, file, kind: 'added'})
      else if (file && old && old.hash !== file.hash) out.push({path, file, kind: 'modified'})
      else if (!file && old) out.push({path, file, kind: 'removed'})
    }
    return out
  }

  // ---- HTTP ----------------------------------------------------------------------------

  // lib/view/status_message.rs StatusMessage: success bodies flatten it at the top level.
  const ok = (fields: Record<string, unknown>, message = 'resource_found', status = 200) =>
    new HttpAnswer(status, {status: 'success', status_message: message, oxen_version: '0.54.0', ...fields})
  // StatusMessage::error(msg): the free text goes into status_message.
  const fail = (status: number, message: string, description?: string) =>
    new HttpAnswer(status, {status: 'error', status_message: message, ...(description ? {status_description: description} : {}), oxen_version: '0.54.0'})
  // StatusMessageDescription::not_found(d).
  const notFound = (what: string) => fail(404, 'resource_not_found', `${what} not found`)
  // srv/errors.rs OxenHttpError::BadRequest: the error envelope, no oxen_version.
  const badRequest = (detail: string) =>
    new HttpAnswer(400, {error: {type: 'bad_request', title: 'Bad Request', detail}, status: 'error', status_message: 'bad_request'})
  // srv/errors.rs: any other OxenError becomes a generic 500 titled with its Display.
  const internalError = (title: string) =>
    new HttpAnswer(500, {error: {type: 'internal_server_error', title}, status: 'error', status_message: 'internal_server_error'})
  // srv/controllers/workspaces/*: a missing workspace is StatusMessageDescription::not_found.
  const noWorkspace = (id: string) => fail(404, 'resource_not_found', `Workspace not found: ${id}`)

  function paginate<T>(items: T[], query: URLSearchParams) {
    const page = Math.max(1, Number(query.get('page') ?? 1) || 1)
    const pageSize = Math.max(1, Number(query.get('page_size') ?? 100) || 100)
    return {
      items: items.slice((page - 1) * pageSize, page * pageSize),
      page_number: page, page_size: pageSize, total_pages: Math.ceil(items.length / pageSize), total_entries: items.length,
    }
  }

  function route(method: string, segs: string[], query: URLSearchParams, req: http.IncomingMessage, body: Buffer, log: HubRequest): HttpAnswer {
    if (segs[0] !== 'api' || segs[1] !== 'repos') return notFound('route')
    if (segs.length === 2) {
      if (method !== 'POST') return fail(405, 'method_not_allowed')
      return createRepoRoute(req, body)
    }
    const [ns, name] = [segs[2], segs[3]]
    if (name === undefined) return notFound('route')
    const repo = repos.get(repoKey(ns, name))
    if (!repo) return segs.length === 4 && method === 'DELETE' ? fail(404, 'resource_not_found') : notFound(`repository ${ns}/${name}`)
    const rest = segs.slice(4)
    if (rest.length === 0) {
      // srv/controllers/repositories.rs delete: 200 resource_deleted (the removal runs in the background).
      if (method === 'DELETE') {
        repos.delete(repoKey(ns, name))
        return ok({}, 'resource_deleted')
      }
      if (method !== 'GET') return fail(405, 'method_not_allowed')
      return ok({repository: repoView(repo)})
    }
    const [kind, ...tail] = rest
    switch (kind) {
      case 'branches': return branchesRoute(repo, method, tail, body)
      case 'commits': return commitsRoute(repo, method, tail, query)
      case 'dir': return method === 'GET' ? dirRoute(repo, tail, query) : fail(405, 'method_not_allowed')
      case 'meta': return method === 'GET' ? metaRoute(repo, tail) : fail(405, 'method_not_allowed')
      case 'file': return method === 'GET' ? fileRoute(repo, tail) : fail(405, 'method_not_allowed')
      case 'versions': return versionsRoute(repo, method, tail, query, body, log)
      case 'workspaces': return workspacesRoute(repo, method, tail, query, req, body, log)
      case 'action': {
        // srv/controllers/action.rs started / completed: echo the action, touch nothing.
        if ((method !== 'POST' && method !== 'GET') || tail.length !== 2 || !['started', 'completed'].includes(tail[0])) return notFound('route')
        return new HttpAnswer(200, {action: tail[1], status: 'success', state: tail[0]})
      }
      default: return notFound('route')
    }
  }

  function repoView(repo: HubRepo) {
    return {
      namespace: repo.namespace, name: repo.name, description: repo.description, is_public: repo.isPublic,
      is_empty: repo.commits.size === 0, size: [...repo.blobs.values()].reduce((a, b) => a + b, 0),
    }
  }

  function createRepoRoute(req: http.IncomingMessage, body: Buffer): HttpAnswer {
    if (req.headers['content-type'] !== 'application/json') return fail(400, 'bad_request', 'Content-Type must be application/json')
    const data = parseJson(body) as Record<string, unknown> | undefined
    if (!data || typeof data.namespace !== 'string' || typeof data.name !== 'string') return fail(400, 'bad_request', 'expected {namespace, name}')
    if (!NAME.test(data.namespace) || !NAME.test(data.name)) return fail(400, 'bad_request', 'invalid repository name')
    if (repos.has(repoKey(data.namespace, data.name))) return fail(409, 'resource_already_exists', `${data.namespace}/${data.name} already exists`)
    const repo = newRepo(data.namespace, data.name, typeof data.description === 'string' ? data.description : '', data.is_public === true)
    return ok({repository: repoView(repo)}, 'resource_created')
  }

  function branchesRoute(repo: HubRepo, method: string, tail: string[], body: Buffer): HttpAnswer {
    const view = (name: string) => ({name, commit_id: repo.branches.get(name)!})
    if (tail.length === 0 && method === 'GET') return ok({branches: [...repo.branches.keys()].sort().map(view)})
    if (tail.length === 0 && method === 'POST') {
      // srv/controllers/branches.rs create: the body (read as a string, any Content-Type) is
      // tried as {new_name, from_name}, then as {new_name, commit_id}; unknown fields ignored.
      const data = parseJson(body) as Record<string, unknown> | undefined
      const newName = data && typeof data.new_name === 'string' ? data.new_name : undefined
      if (newName !== undefined && typeof data!.from_name === 'string') {
        // create_from_branch: an existing name is answered as found, from_name unchecked.
        if (repo.branches.has(newName)) return ok({branch: view(newName)})
        const from = repo.branches.get(data!.from_name)
        if (!from) return fail(404, 'resource_not_found')
        if (BAD_BRANCH.test(newName)) return internalError(`'${newName}' is not a valid branch name.`)
        repo.branches.set(newName, from)
        return ok({branch: view(newName)}, 'resource_created')
      }
      if (newName !== undefined && typeof data!.commit_id === 'string') {
        // create_from_commit -> branches::create: an existing name or an unknown commit is a generic 500.
        if (!repo.commits.has(data!.commit_id)) return internalError(`Could not find commit: ${data!.commit_id}`)
        if (repo.branches.has(newName)) return internalError(`Branch already exists: ${newName}`)
        if (BAD_BRANCH.test(newName)) return internalError(`'${newName}' is not a valid branch name.`)
        repo.branches.set(newName, data!.commit_id)
        return ok({branch: view(newName)}, 'resource_created')
      }
      return fail(400, 'Invalid request body')
    }
    if (method === 'GET') {
      const name = tail.join('/')
      return repo.branches.has(name) ? ok({branch: view(name)}) : notFound(`branch ${name}`)
    }
    // The server's branches::delete (liboxen's api::client::branches::delete sends it); the commits stay.
    if (method === 'DELETE') {
      const name = tail.join('/')
      if (!repo.branches.has(name)) return notFound(`branch ${name}`)
      repo.branches.delete(name)
      return ok({}, 'resource_deleted')
    }
    return fail(405, 'method_not_allowed')
  }

  function commitsRoute(repo: HubRepo, method: string, tail: string[], query: URLSearchParams): HttpAnswer {
    if (method === 'POST' && tail.length === 2 && tail[1] === 'complete') {
      // srv/controllers/commits.rs complete: looks the commit up and answers it; changes nothing.
      const c = repo.commits.get(tail[0])
      return c ? ok({commit: commitView(c)}, 'resource_created') : fail(404, 'resource_not_found')
    }
    if (method !== 'GET') return fail(405, 'method_not_allowed')
    if (tail[0] === 'history' && tail.length > 1) {
      const rev = tail.slice(1).join('/')
      const c = repo.commits.get(rev) ?? repo.commits.get(repo.branches.get(rev) ?? '')
      if (!c) return notFound(`revision ${rev}`)
      const {items, ...page} = paginate(history(repo, c).map(commitView), query)
      return ok({commits: items, ...page})
    }
    if (tail.length === 1) {
      const c = repo.commits.get(tail[0])
      return c ? ok({commit: commitView(c)}) : notFound(`commit ${tail[0]}`)
    }
    return notFound('route')
  }

  function dirRoute(repo: HubRepo, tail: string[], query: URLSearchParams): HttpAnswer {
    const res = resolveResource(repo, tail)
    // srv/controllers/dir.rs get: an unknown revision is PathDoesNotExist.
    if (!res) return new HttpAnswer(404, {error: {type: 'resource_not_found', title: 'Path does not exist', detail: `Could not find path: ${tail.join('/')}`}, status: 'error', status_message: 'resource_not_found'})
    const {commit, path, workspace} = res
    // lib/repositories/entries.rs list_directory_w_workspace_depth: a workspace is listed from
    // its BASE commit's tree; its staged changes are merged in afterwards (below).
    const tree = workspace ? commit.tree : res.tree
    if (tree.has(path)) return fail(400, 'bad_request', `${path} is a file`)
    if (!isDir(tree, path)) {
      // A folder that exists only in the workspace (new, staged) is ResourceNotFound.
      return new HttpAnswer(404, {error: {type: 'resource_not_found', title: 'Resource not found', detail: `Could not find path: ${path}`}, status: 'error', status_message: 'resource_not_found'})
    }
    const prefix = path ? `${path}/` : ''
    const dirs = new Set<string>()
    const files: string[] = []
    for (const p of tree.keys()) {
      if (!p.startsWith(prefix)) continue
      const rest = p.slice(prefix.length)
      const slash = rest.indexOf('/')
      if (slash >= 0) dirs.add(rest.slice(0, slash))
      else files.push(p)
    }
    const entries: Array<Record<string, unknown>> = [
      ...[...dirs].sort().map((d) => dirEntry(tree, prefix + d)),
      ...files.sort().map((p) => fileEntry(repo, commit, tree, p)),
    ]
    const {items, ...page} = paginate(entries, query)
    if (workspace) {
      // lib/repositories/workspaces.rs populate_entries_with_workspace_data, fed by
      // status_from_dir (read_staged_entries_below_path: every staged entry below `path`, at
      // any depth). Modified / Removed mark the committed entry in place, matched by BASENAME,
      // keeping the base commit's hash and size; Added files are appended AFTER pagination, so
      // they come on every page, uncounted, with their full repo path as `filename`.
      const staged = [...workspace.staged].filter(([p]) => p.startsWith(prefix))
      const base = commit.tree
      for (const [p, f] of staged) {
        if (!base.has(p)) continue
        const status = f ? 'Modified' : 'Removed'
        const basename = p.split('/').pop()
        for (const e of items) if (!e.is_dir && e.filename === basename) e.changes = {status}
      }
      for (const [p, f] of staged.sort(([a], [b]) => (a < b ? -1 : 1))) {
        if (!f || base.has(p)) continue
        const ext = p.includes('.') ? p.split('.').pop()!.toLowerCase() : ''
        items.push({
          filename: p, hash: f.hash, is_dir: false, size: f.size, latest_commit: commitView(commit),
          data_type: dataType(ext), mime_type: mimeType(ext), extension: ext, resource: null, metadata: null, changes: {status: 'Added'},
        })
      }
    }
    return ok({dir: dirEntry(tree, path), entries: items, resource: {path, version: workspace ? workspace.id : commit.id}, ...page})
  }

  function metaRoute(repo: HubRepo, tail: string[]): HttpAnswer {
    const res = resolveResource(repo, tail)
    if (!res) return notFound('revision')
    if (res.tree.has(res.path)) return ok({entry: fileEntry(repo, res.commit, res.tree, res.path)})
    if (isDir(res.tree, res.path)) return ok({entry: dirEntry(res.tree, res.path)})
    return notFound(`path ${res.path}`)
  }

  function fileRoute(repo: HubRepo, tail: string[]): HttpAnswer {
    const res = resolveResource(repo, tail)
    if (!res) return notFound('revision')
    const f = res.tree.get(res.path)
    if (!f) return notFound(`file ${res.path}`)
    // The tree names a blob the version store has under another string: the read fails.
    if (f.lost) return internalError(`Could not find version file for ${res.path}`)
    const ext = res.path.includes('.') ? res.path.split('.').pop()!.toLowerCase() : ''
    return new HttpAnswer(200, f.bytes, {'content-type': mimeType(ext)})
  }

  /**
   * lib/core/v_latest/add.rs stage_file_with_hash, shared by the multipart route and the chunk
   * API's complete: a path in the base commit with other content is staged Modified, one with
   * the same content is silently NOT staged, a new path is staged Added.
   */
  function stage(repo: HubRepo, ws: HubWorkspace, path: string, file: HubFile): void {
    const old = repo.commits.get(ws.base)!.tree.get(path)
    if (old && old.hash === file.hash) return
    ws.staged.set(path, file)
  }

  function versionsRoute(repo: HubRepo, method: string, tail: string[], query: URLSearchParams, body: Buffer, log: HubRequest): HttpAnswer {
    const [hash, action] = tail
    if (tail.length !== 2) return notFound('route')
    if (method === 'GET' && action === 'metadata') {
      // srv/controllers/versions.rs metadata: looked up by the raw hash string.
      const size = repo.blobs.get(hash)
      return size === undefined ? fail(404, 'resource_not_found') : ok({version: {hash, size}})
    }
    if (method === 'POST' && action === 'create') {
      // srv/controllers/versions/chunks.rs create: ignores the request and its body, always 200.
      return ok({})
    }
    if (method === 'PUT' && action === 'chunks') {
      // chunks::upload -> lib/storage/local.rs store_version_chunk: the raw body is stored at
      // its offset (missing = 0); a chunk already stored there is KEPT and the new bytes dropped.
      log.bodyBytes = body.length
      const offset = Number(query.get('offset') ?? 0) || 0
      const chunks = repo.chunks.get(hash) ?? new Map<number, Buffer>()
      repo.chunks.set(hash, chunks)
      if (!chunks.has(offset)) chunks.set(offset, Buffer.from(body))
      return ok({}, 'resource_created')
    }
    if (method === 'POST' && action === 'complete') return completeUpload(repo, hash, body)
    return notFound('route')
  }

  /** srv/controllers/versions/chunks.rs complete, step by step. */
  function completeUpload(repo: HubRepo, hash: string, body: Buffer): HttpAnswer {
    const data = parseJson(body) as {files?: Array<Record<string, unknown>>; workspace_id?: unknown} | undefined
    if (!data || typeof data !== 'object' || !Array.isArray(data.files)) return fail(400, 'Invalid request body')
    if (data.files.length !== 1) return fail(400, 'Expected a single file in the request')
    const file = data.files[0]
    const expected = typeof file.num_chunks === 'number' ? file.num_chunks : Array.isArray(file.upload_results) ? file.upload_results.length : undefined
    if (expected === undefined) return badRequest('Missing both num_chunks and upload_results in request')
    const chunks = repo.chunks.get(hash)
    // No chunks dir at all: an IO NotFound, which becomes a generic 500.
    if (!chunks) return internalError('No such file or directory (os error 2)')
    if (chunks.size !== expected) return fail(400, `Number of chunks does not match expected number of chunks: ${chunks.size} != ${expected}`)
    // combine_version_chunks: ascending offsets, gaps and overlaps unchecked, then the hash
    // (parsed as a u128) compared; on a mismatch the chunks stay, stuck (see upload above).
    const bytes = Buffer.concat([...chunks].sort(([a], [b]) => a - b).map(([, c]) => c))
    const got = xxh3_128Hex(bytes)
    let same = false
    try {
      same = /^[0-9a-fA-F]{1,32}$/.test(hash) && BigInt(`0x${hash}`) === BigInt(`0x${got}`)
    } catch {
      same = false
    }
    if (!same) return internalError(`Hash mismatch writing "versions/${hash.slice(0, 2)}/${hash.slice(2)}/data": expected ${hash}, got ${got}`)
    repo.chunks.delete(hash)
    // Stored under the hash string AS GIVEN: a zero-padded one is a path the tree never reads.
    repo.blobs.set(hash, bytes.length)
    if (data.workspace_id === undefined || data.workspace_id === null) return ok({})
    const ws = findWorkspace(repo, String(data.workspace_id))
    if (!ws) return fail(404, `Workspace not found: ${String(data.workspace_id)}`)
    const name = String(file.file_name ?? '')
    const dst = typeof file.dst_dir === 'string' && file.dst_dir !== '' ? `${file.dst_dir.replace(/\/+$/, '')}/${name}` : name
    // add_version_file: the destination path is used as is, not normalized.
    stage(repo, ws, dst, {hash: got, size: bytes.length, bytes, ...(hash === got ? {} : {lost: true})})
    state.uploadedFiles++
    return ok({})
  }

  function workspacesRoute(repo: HubRepo, method: string, tail: string[], query: URLSearchParams, req: http.IncomingMessage, body: Buffer, log: HubRequest): HttpAnswer {
    const wsView = (ws: HubWorkspace, id = ws.id) => ({id, name: ws.name, commit: commitView(repo.commits.get(ws.base)!), created_at: ws.createdAt})
    if (tail.length === 0) {
      // srv/controllers/workspaces.rs get_or_create (POST is the deprecated alias of PUT).
      if (method !== 'PUT' && method !== 'POST') return fail(405, 'method_not_allowed')
      const data = parseJson(body) as Record<string, unknown> | undefined
      // NewWorkspace: workspace_id and branch_name required; resource_path, entity_type and
      // force are accepted and never read.
      if (!data || typeof data !== 'object') return fail(400, 'expected value at line 1 column 1')
      if (typeof data.workspace_id !== 'string') return fail(400, 'missing field `workspace_id` at line 1 column 20')
      if (typeof data.branch_name !== 'string') return fail(400, 'missing field `branch_name` at line 1 column 20')
      const branch = data.branch_name
      const name = typeof data.name === 'string' ? data.name : null
      // The branch is looked up first, before any existing workspace.
      if (!repo.branches.has(branch)) {
        if (repo.commits.size > 0) return fail(400, `Branch not found: ${branch}. For non-empty repositories, create the branch first.`)
        // An empty repository gets its initial commit on the branch (lib/constants.rs INITIAL_COMMIT_MSG).
        const root = makeCommit(repo, [], new Map(), {message: 'Initialized Repo 🐂', author: 'Oxen', email: 'oxen@oxen.ai'})
        repo.branches.set(branch, root.id)
      }
      // Existing: looked up by name if given, else by id; answered with the REQUEST's id and
      // the workspace's own base commit, whatever branch it sits on.
      const existing = findWorkspace(repo, name ?? data.workspace_id)
      if (existing) return ok({workspace: wsView(existing, data.workspace_id)})
      if (repo.workspaces.has(data.workspace_id)) return internalError(`Workspace ${data.workspace_id} already exists`)
      const ws: HubWorkspace = {id: data.workspace_id, name, base: repo.branches.get(branch)!, staged: new Map(), createdAt: new Date().toISOString()}
      repo.workspaces.set(ws.id, ws)
      return ok({workspace: wsView(ws)}, 'resource_created')
    }
    const ws = findWorkspace(repo, tail[0])
    if (!ws) return noWorkspace(tail[0])
    const [, action, ...more] = tail
    if (action === undefined) {
      if (method === 'GET') return ok({workspace: wsView(ws)})
      if (method === 'DELETE') {
        repo.workspaces.delete(ws.id)
        return ok({workspace: wsView(ws)}, 'resource_deleted')
      }
      return fail(405, 'method_not_allowed')
    }
    // srv/controllers/workspaces/files.rs validate: the body ({"size": N}) is ignored.
    if (action === 'validate' && method === 'POST') return ok({})
    if (action === 'files' && method === 'POST' && (more.length > 0 || log.path.endsWith('/files/') || req.url?.split('?')[0].endsWith('/files/'))) return uploadRoute(repo, ws, more.join('/'), req, body, log)
    if (action === 'files' && method === 'DELETE' && more.length === 0) return removeRoute(repo, ws, body)
    if (action === 'changes' && method === 'GET') {
      // srv/controllers/workspaces/changes.rs list_root / list: synthetic entries with the full
      // path, an always-empty hash and size 0; each list paginated on its own, from a HashMap,
      // so the order is arbitrary and changes between calls (shuffled here to show it).
      if (query.get('page_size') === '0') return badRequest('page_size must be at least 1')
      const prefix = more.length ? `${more.join('/')}/` : ''
      const changes = shuffle(changesOf(repo, ws).filter((c) => c.path.startsWith(prefix)))
      const list = (kind: string) => {
        const entries = changes.filter((c) => c.kind === kind).map((c) => {
          const ext = c.path.includes('.') ? c.path.split('.').pop()!.toLowerCase() : ''
          return {filename: c.path, hash: '', is_dir: false, latest_commit: null, resource: null, size: 0, data_type: dataType(ext), mime_type: mimeType(ext), extension: ext, metadata: null, is_queryable: null}
        })
        const {items, ...page} = paginate(entries, query)
        return {dir: null, entries: items, resource: null, metadata: null, ...page}
      }
      return ok({staged: {added_dirs: {num_files_staged: 0, total_files: 0, paths: {}}, added_files: list('added'), modified_files: list('modified'), removed_files: list('removed')}})
    }
    if (action === 'merge' && method === 'GET' && more.length > 0) return mergeabilityRoute(repo, ws, more.join('/'))
    if ((action === 'merge' || action === 'commit') && method === 'POST' && more.length > 0) return commitRoute(repo, ws, more.join('/'), body)
    return notFound('route')
  }

  function uploadRoute(repo: HubRepo, ws: HubWorkspace, dir: string, req: http.IncomingMessage, body: Buffer, log: HubRequest): HttpAnswer {
    const boundary = /^multipart\/form-data;.*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(req.headers['content-type'] ?? '')
    if (!boundary) return badRequest('Content type error')
    let parts: Part[]
    try {
      parts = parseMultipart(body, boundary[1] ?? boundary[2])
    } catch (err) {
      return badRequest((err as Error).message)
    }
    log.parts = parts.map((p) => ({filename: p.filename, contentType: p.contentType, size: p.data.length}))
    // srv/controllers/workspaces/files.rs save_parts: only `file[]` / `file` fields are read.
    const files: Array<{path: string; file: HubFile}> = []
    for (const part of parts) {
      if (part.name !== 'file[]' && part.name !== 'file') continue
      if (part.filename === undefined) return badRequest('Missing hash in multipart request')
      let bytes = part.data
      // Inflated only when the part says exactly application/gzip, capped at 10 MiB; a part
      // over the cap (or bad gzip) lands in err_files, which is never returned: the answer is
      // still 200 and the file is just missing from `paths`. Other parts have no cap.
      if (part.contentType === 'application/gzip') {
        try {
          bytes = zlib.gunzipSync(bytes, {maxOutputLength: PART_LIMIT})
        } catch {
          state.oversizeDropped++
          continue
        }
      }
      files.push({path: `${dir}\u0000${part.filename}`, file: fileOf(bytes)})
    }
    // util::fs::workspace_staged_path -> validate_and_normalize_path: one bad path refuses the
    // whole request (the blobs are already stored, nothing is staged).
    const staged: Array<{path: string; file: HubFile}> = []
    for (const f of files) {
      repo.blobs.set(f.file.hash, f.file.size)
      const [d, name] = f.path.split('\u0000')
      const path = safeJoin(d, name)
      if (!path) return badRequest(`Invalid staging path (directory "${d}", file "${name}"): path is empty, absolute or leaves the repository`)
      staged.push({path, file: f.file})
    }
    const drop = Math.min(dropUploads, staged.length)
    dropUploads -= drop
    const kept = staged.slice(0, staged.length - drop)
    // add_version_files_at_paths: unchanged files count as staged though nothing is written.
    for (const {path, file} of kept) stage(repo, ws, path, file)
    state.uploadedFiles += kept.length
    return ok({paths: kept.map((s) => s.path)}, 'resource_created')
  }

  function removeRoute(repo: HubRepo, ws: HubWorkspace, body: Buffer): HttpAnswer {
    const paths = parseJson(body)
    if (!Array.isArray(paths) || paths.some((p) => typeof p !== 'string')) return fail(400, 'bad_request', 'expected a JSON array of paths')
    const base = repo.commits.get(ws.base)!.tree
    const missing: string[] = []
    for (const raw of paths as string[]) {
      const p = safeJoin('', raw)
      if (!p) return fail(400, 'bad_request', `invalid path ${raw}`)
      const current = workspaceTree(repo, ws)
      const hits = [...current.keys()].filter((k) => k === p || k.startsWith(`${p}/`))
      if (hits.length === 0) missing.push(raw)
      for (const k of hits) {
        if (base.has(k)) ws.staged.set(k, null)
        else ws.staged.delete(k)
      }
    }
    if (missing.length) return ok({paths: missing}, 'resource_not_found', 206)
    return ok({paths}, 'resource_deleted')
  }

  /** lib/core/v_latest/workspaces/commit.rs list_conflicts: staged paths in both base and head, with different hashes. */
  function conflictsOf(repo: HubRepo, ws: HubWorkspace, head: HubCommit): string[] {
    const base = repo.commits.get(ws.base)!.tree
    return changesOf(repo, ws).map((c) => c.path).filter((p) => base.has(p) && head.tree.has(p) && base.get(p)!.hash !== head.tree.get(p)!.hash)
  }

  /** GET workspaces/{id}/merge/{branch}: srv/controllers/workspaces.rs mergeability. */
  function mergeabilityRoute(repo: HubRepo, ws: HubWorkspace, branch: string): HttpAnswer {
    const headId = repo.branches.get(branch)
    if (!headId) return new HttpAnswer(404, {error: {type: 'resource_not_found', title: 'Branch does not exist', detail: `Could not find branch: Branch '${branch}' not found`}, status: 'error', status_message: 'resource_not_found'})
    const head = repo.commits.get(headId)!
    const conflicts = conflictsOf(repo, ws, head)
    // merge::list_commits_between_commits(workspace.commit, branch head).
    const known = new Set(history(repo, repo.commits.get(ws.base)!).map((c) => c.id))
    const commits = history(repo, head).filter((c) => !known.has(c.id)).map(commitView)
    return ok({is_mergeable: conflicts.length === 0, conflicts: conflicts.map((path) => ({path})), commits})
  }

  /** POST workspaces/{id}/merge|commit/{branch}: srv/controllers/workspaces.rs commit, checks in its order. */
  function commitRoute(repo: HubRepo, ws: HubWorkspace, branch: string, body: Buffer): HttpAnswer {
    const data = parseJson(body) as Record<string, unknown> | undefined
    if (!data || typeof data !== 'object') return fail(400, 'expected value at line 1 column 1')
    for (const key of ['message', 'author', 'email']) if (typeof data[key] !== 'string') return fail(400, `missing field \`${key}\` at line 1 column 2`)
    const headId = repo.branches.get(branch)
    // A missing branch: the bare branch name as the description.
    if (!headId) return fail(404, 'resource_not_found', branch)
    const head = repo.commits.get(headId)!
    const conflicts = conflictsOf(repo, ws, head)
    if (conflicts.length) {
      return new HttpAnswer(409, {
        error: {type: 'conflict', title: 'Workspace is behind', detail: `This workspace '${ws.id}' is behind on branch '${branch}' commit ${ws.base} < ${headId}`},
        status: 'error', status_message: 'conflict',
      })
    }
    const changes = changesOf(repo, ws)
    // OxenError::NoChanges, caught by the handler itself and written with {:?}.
    if (changes.length === 0) return fail(422, 'NoChanges')
    // commit_writer::commit_dir_entries: the parent is the branch's CURRENT head (revisions::get
    // of the branch), so a branch that moved without conflicts gets this commit on top.
    const tree = new Map(head.tree)
    for (const c of changes) {
      if (c.file) tree.set(c.path, c.file)
      else tree.delete(c.path)
    }
    const commit = makeCommit(repo, [headId], tree, {message: data.message as string, author: data.author as string, email: data.email as string})
    repo.branches.set(branch, commit.id)
    // An unnamed workspace is deleted; a named one moves to the new commit.
    if (ws.name === null) {
      repo.workspaces.delete(ws.id)
    } else {
      ws.base = commit.id
      ws.staged.clear()
    }
    return ok({commit: commitView(commit)}, 'resource_created')
  }

  // ---- server --------------------------------------------------------------------------

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      const method = req.method ?? 'GET'
      let segs: string[]
      try {
        segs = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent)
      } catch {
        segs = []
      }
      const path = `/${segs.join('/')}`
      const log: HubRequest = {method, path, status: 0}
      const raw = Buffer.concat(chunks)
      if (raw.length > 0 && raw.length < 65536 && raw[0] !== 0x2d) {
        const json = parseJson(raw)
        if (json !== undefined) log.json = json
      }
      requests.push(log)
      let answer: HttpAnswer
      const hook = hooks.find((h) => (!h.method || h.method === method) && matches(h.path, path))
      if (hook) {
        hooks.splice(hooks.indexOf(hook), 1)
        hook.action()
      }
      const fault = faults.find((f) => (!f.method || f.method === method) && matches(f.path, path))
      if (fault) {
        if (--fault.left <= 0) faults.splice(faults.indexOf(fault), 1)
        answer = new HttpAnswer(fault.status, fault.body ?? '', fault.headers)
      } else if ((req.headers['user-agent'] ?? '').startsWith('Oxen/')) {
        answer = fail(426, 'update_required', 'this client is too old; please upgrade')
      } else if (req.headers.authorization !== `Bearer ${token}`) {
        answer = fail(401, 'unauthenticated', 'missing or invalid bearer token')
      } else {
        try {
          answer = route(method, segs, url.searchParams, req, raw, log)
        } catch (err) {
          answer = fail(500, 'internal_server_error', (err as Error).message)
        }
      }
      log.status = answer.status
      send(res, answer)
    })
  })

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port

  const branchTree = (ns: string, name: string, branch: string) => {
    const repo = repos.get(repoKey(ns, name))
    const id = repo?.branches.get(branch)
    return repo && id ? {repo, commit: repo.commits.get(id)!} : null
  }

  const hub: OxenHub = {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    token,
    requests,
    get uploadedFiles() {
      return state.uploadedFiles
    },
    set uploadedFiles(n: number) {
      state.uploadedFiles = n
    },
    count(method, path) {
      return requests.filter((r) => (!method || r.method === method) && matches(path, r.path)).length
    },
    resetLog() {
      requests.length = 0
      state.uploadedFiles = 0
      state.oversizeDropped = 0
    },
    failNext(fault) {
      faults.push({...fault, left: fault.times ?? 1})
    },
    beforeNext(match, action) {
      hooks.push({...match, action})
    },
    dropNextUploads(n) {
      dropUploads = n
    },
    files(ns, name, branch = 'main') {
      const t = branchTree(ns, name, branch)
      return t ? new Map([...t.commit.tree].map(([p, f]) => [p, Buffer.from(f.bytes)])) : null
    },
    head(ns, name, branch = 'main') {
      const t = branchTree(ns, name, branch)
      return t ? commitView(t.commit) : null
    },
    createRepo(ns, name) {
      if (!repos.has(repoKey(ns, name))) newRepo(ns, name)
    },
    commitDirect(ns, name, branch, changes, message = 'direct commit') {
      const repo = repos.get(repoKey(ns, name)) ?? newRepo(ns, name)
      const headId = repo.branches.get(branch)
      const tree: Tree = new Map(headId ? repo.commits.get(headId)!.tree : [])
      for (const [p, bytes] of Object.entries(changes)) {
        if (bytes) tree.set(p, fileOf(bytes))
        else tree.delete(p)
      }
      const c = makeCommit(repo, headId ? [headId] : [], tree, {message, author: 'someone else', email: 'else@example.com'})
      repo.branches.set(branch, c.id)
      return commitView(c)
    },
    tamperFile(ns, name, p, bytes, branch = 'main') {
      const t = branchTree(ns, name, branch)
      const f = t?.commit.tree.get(p)
      if (!t || !f) throw new Error(`no file ${p} on ${ns}/${name}@${branch}`)
      t.commit.tree.set(p, {...f, bytes: Buffer.from(bytes)})
    },
    workspaceCount(ns, name) {
      return repos.get(repoKey(ns, name))?.workspaces.size ?? 0
    },
    get oversizeDropped() {
      return state.oversizeDropped
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    },
  }
  return hub
}

function send(res: http.ServerResponse, answer: HttpAnswer): void {
  const headers = {...answer.headers}
  let payload: Buffer
  if (Buffer.isBuffer(answer.body)) {
    payload = answer.body
  } else if (typeof answer.body === 'string') {
    payload = Buffer.from(answer.body)
    headers['content-type'] ??= 'text/html'
  } else {
    payload = Buffer.from(JSON.stringify(answer.body))
    headers['content-type'] ??= 'application/json'
  }
  headers['content-length'] = String(payload.length)
  res.writeHead(answer.status, headers)
  res.end(payload)
}

/** A copy in random order: the order of a Rust HashMap's iteration, which the changes route shows. */
function shuffle<T>(items: T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

function matches(pattern: string | RegExp | undefined, path: string): boolean {
  if (pattern === undefined) return true
  return typeof pattern === 'string' ? path.includes(pattern) : pattern.test(path)
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
}

/** Joins an upload dir and a part filename; null for absolute paths or `..` anywhere. */
function safeJoin(dir: string, name: string): string | null {
  if (name.startsWith('/') || dir.startsWith('/') || name.includes('\\') || /^[a-zA-Z]:/.test(name)) return null
  const segs = [...dir.split('/'), ...name.split('/')].filter((s) => s !== '' && s !== '.')
  if (segs.length === 0 || segs.some((s) => s === '..')) return null
  return segs.join('/')
}

interface Part {
  name?: string
  filename?: string
  contentType?: string
  data: Buffer
}

/** A strict multipart/form-data reader (RFC 7578), enough for the upload route. */
function parseMultipart(body: Buffer, boundary: string): Part[] {
  const delim = Buffer.from(`--${boundary}`)
  const next = Buffer.from(`\r\n--${boundary}`)
  let pos = body.indexOf(delim)
  if (pos < 0) throw new Error('multipart boundary not found')
  pos += delim.length
  const parts: Part[] = []
  for (;;) {
    if (body.subarray(pos, pos + 2).toString() === '--') return parts
    if (body.subarray(pos, pos + 2).toString() !== '\r\n') throw new Error('malformed multipart body')
    pos += 2
    const headEnd = body.indexOf('\r\n\r\n', pos)
    if (headEnd < 0) throw new Error('malformed multipart part headers')
    const head = body.subarray(pos, headEnd).toString('utf8')
    const dataStart = headEnd + 4
    const end = body.indexOf(next, dataStart)
    if (end < 0) throw new Error('unterminated multipart part')
    const part: Part = {data: body.subarray(dataStart, end)}
    for (const line of head.split('\r\n')) {
      const [key, ...value] = line.split(':')
      const v = value.join(':').trim()
      if (key.toLowerCase() === 'content-disposition') {
        part.name = unquote(/(?:^|;)\s*name="([^"]*)"/i.exec(v)?.[1])
        part.filename = unquote(/;\s*filename="([^"]*)"/i.exec(v)?.[1])
      } else if (key.toLowerCase() === 'content-type') {
        part.contentType = v
      }
    }
    parts.push(part)
    pos = end + next.length
  }
}

function unquote(v: string | undefined): string | undefined {
  return v?.replace(/%22/g, '"').replace(/%0D/g, '\r').replace(/%0A/g, '\n')
}

function dataType(ext: string): string {
  if (['png', 'jpg', 'jpeg', 'gif', 'webp'].includes(ext)) return 'image'
  if (['csv', 'tsv', 'parquet', 'jsonl'].includes(ext)) return 'tabular'
  if (['md', 'txt', 'json'].includes(ext)) return 'text'
  return 'binary'
}

function mimeType(ext: string): string {
  const types: Record<string, string> = {png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', csv: 'text/csv', md: 'text/markdown', txt: 'text/plain', json: 'application/json'}
  return types[ext] ?? 'application/octet-stream'
}
