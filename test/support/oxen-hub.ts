import {randomBytes} from 'node:crypto'
import * as http from 'node:http'
import type {AddressInfo} from 'node:net'
import * as zlib from 'node:zlib'

import {xxh3_128Hex} from '../../src/dataset/xxh3.js'

/**
 * A fake oxen hub for tests: a real HTTP server on 127.0.0.1 that keeps repositories,
 * branches, commits with full file trees and workspaces in memory, and answers the routes of
 * shared/reference/oxen-api.md with the same status codes and JSON shapes (every JSON body
 * carries `status` and `status_message`). Tests drive it through OxenClient or plain fetch,
 * and inspect it through the hooks on OxenHub (request log, fault injection, branch state).
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
  close(): Promise<void>
}

export const OXEN_HUB_TEST_TOKEN = 'hub-test-token-7f3a9c'

interface HubFile {
  hash: string
  size: number
  bytes: Buffer
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
}

class HttpAnswer {
  constructor(readonly status: number, readonly body: unknown, readonly headers: Record<string, string> = {}) {}
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/
const PART_LIMIT = 10 * 1024 * 1024

export async function startOxenHub(options: OxenHubOptions = {}): Promise<OxenHub> {
  const token = options.token ?? OXEN_HUB_TEST_TOKEN
  const repos = new Map<string, HubRepo>()
  const requests: HubRequest[] = []
  const faults: Array<OxenHubFault & {left: number}> = []
  let dropUploads = 0
  let seq = 0
  let lastTime = 0
  const state = {uploadedFiles: 0}

  // ---- model ---------------------------------------------------------------------------

  const repoKey = (ns: string, name: string) => `${ns}/${name}`

  function newRepo(ns: string, name: string, description = '', isPublic = false): HubRepo {
    const r: HubRepo = {namespace: ns, name, description, isPublic, commits: new Map(), branches: new Map(), workspaces: new Map(), blobs: new Map()}
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

  /** Splits `segments` into a revision (shortest prefix naming a commit, branch or workspace) and a path. */
  function resolveResource(repo: HubRepo, segments: string[]): {tree: Tree; commit: HubCommit; path: string} | null {
    for (let i = 1; i <= segments.length; i++) {
      const rev = segments.slice(0, i).join('/')
      const path = segments.slice(i).join('/')
      const commit = repo.commits.get(rev) ?? repo.commits.get(repo.branches.get(rev) ?? '')
      if (commit) return {tree: commit.tree, commit, path}
      const ws = repo.workspaces.get(rev)
      if (ws) return {tree: workspaceTree(repo, ws), commit: repo.commits.get(ws.base)!, path}
    }
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

  const ok = (fields: Record<string, unknown>, message = 'resource_found', status = 200) =>
    new HttpAnswer(status, {status: 'success', status_message: message, oxen_version: '0.54.0', ...fields})
  const fail = (status: number, message: string, description?: string) =>
    new HttpAnswer(status, {status: 'error', status_message: message, ...(description ? {status_description: description} : {}), oxen_version: '0.54.0'})
  const notFound = (what: string) => fail(404, 'resource_not_found', `${what} not found`)

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
    if (!repo) return notFound(`repository ${ns}/${name}`)
    const rest = segs.slice(4)
    if (rest.length === 0) {
      // repositories::delete answers at once and removes the repository in a background task (tokio::spawn).
      if (method === 'DELETE') {
        setTimeout(() => repos.delete(repoKey(ns, name)), 30)
        return new HttpAnswer(200, {status: 'success', status_message: 'resource_deleted', oxen_version: '0.54.0'})
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
      case 'versions':
        if (method === 'GET' && tail.length === 2 && tail[1] === 'metadata') {
          const size = repo.blobs.get(tail[0])
          return size === undefined ? notFound(`version ${tail[0]}`) : ok({version: {hash: tail[0], size}})
        }
        return notFound('route')
      case 'workspaces': return workspacesRoute(repo, method, tail, query, req, body, log)
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
      const data = parseJson(body) as Record<string, unknown> | undefined
      if (!data || typeof data.new_name !== 'string' || !data.new_name || data.new_name.split('/').some((s) => !s || s === '..')) {
        return fail(400, 'bad_request', 'Invalid request body')
      }
      if (repo.branches.has(data.new_name)) return ok({branch: view(data.new_name)})
      let from: string | undefined
      if (typeof data.from_name === 'string') from = repo.branches.get(data.from_name)
      else if (typeof data.commit_id === 'string') from = repo.commits.has(data.commit_id) ? data.commit_id : undefined
      else return fail(400, 'bad_request', 'Invalid request body')
      if (!from) return notFound('source branch or commit')
      repo.branches.set(data.new_name, from)
      return ok({branch: view(data.new_name)}, 'resource_created')
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
    if (!res) return notFound('revision')
    const {tree, commit, path} = res
    if (tree.has(path)) return fail(400, 'bad_request', `${path} is a file`)
    if (!isDir(tree, path)) return notFound(`directory ${path}`)
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
    const entries = [
      ...[...dirs].sort().map((d) => dirEntry(tree, prefix + d)),
      ...files.sort().map((p) => fileEntry(repo, commit, tree, p)),
    ]
    const {items, ...page} = paginate(entries, query)
    return ok({dir: dirEntry(tree, path), entries: items, resource: {path, version: commit.id}, ...page})
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
    const ext = res.path.includes('.') ? res.path.split('.').pop()!.toLowerCase() : ''
    return new HttpAnswer(200, f.bytes, {'content-type': mimeType(ext)})
  }

  function workspacesRoute(repo: HubRepo, method: string, tail: string[], query: URLSearchParams, req: http.IncomingMessage, body: Buffer, log: HubRequest): HttpAnswer {
    const wsView = (ws: HubWorkspace) => ({id: ws.id, name: ws.name, commit: commitView(repo.commits.get(ws.base)!), created_at: ws.createdAt})
    if (tail.length === 0) {
      if (method !== 'PUT' && method !== 'POST') return fail(405, 'method_not_allowed')
      const data = parseJson(body) as Record<string, unknown> | undefined
      if (!data || typeof data.workspace_id !== 'string' || !data.workspace_id || typeof data.branch_name !== 'string' || !data.branch_name) {
        return fail(400, 'bad_request', 'expected {workspace_id, branch_name}')
      }
      const existing = repo.workspaces.get(data.workspace_id)
      if (existing) return ok({workspace: wsView(existing)})
      if (repo.commits.size === 0) {
        const root = makeCommit(repo, [], new Map(), {message: 'Initialized Repo 🐂', author: 'oxen', email: 'hub@oxen.ai'})
        repo.branches.set(data.branch_name, root.id)
      }
      const base = repo.branches.get(data.branch_name)
      if (!base) return notFound(`branch ${data.branch_name}`)
      const ws: HubWorkspace = {
        id: data.workspace_id, name: typeof data.name === 'string' ? data.name : null, base, staged: new Map(), createdAt: new Date().toISOString(),
      }
      repo.workspaces.set(ws.id, ws)
      return ok({workspace: wsView(ws)}, 'resource_created')
    }
    const ws = repo.workspaces.get(tail[0])
    if (!ws) return fail(404, 'resource_not_found', `workspace ${tail[0]} not found`)
    const [, action, ...more] = tail
    if (action === undefined) {
      if (method === 'GET') return ok({workspace: wsView(ws)})
      if (method === 'DELETE') {
        repo.workspaces.delete(ws.id)
        return ok({workspace: wsView(ws)}, 'resource_deleted')
      }
      return fail(405, 'method_not_allowed')
    }
    if (action === 'files' && method === 'POST') return uploadRoute(repo, ws, more.join('/'), req, body, log)
    if (action === 'files' && method === 'DELETE' && more.length === 0) return removeRoute(repo, ws, body)
    if (action === 'changes' && method === 'GET') {
      const changes = changesOf(repo, ws)
      const list = (kind: string) => {
        const entries = changes.filter((c) => c.kind === kind).map((c) => ({filename: c.path, hash: c.file?.hash ?? '', size: c.file?.size ?? 0, is_dir: false}))
        const {items, ...page} = paginate(entries, query)
        return {entries: items, ...page}
      }
      return ok({staged: {added_dirs: {dirs: []}, added_files: list('added'), modified_files: list('modified'), removed_files: list('removed')}})
    }
    if ((action === 'merge' || action === 'commit') && method === 'POST' && more.length > 0) return commitRoute(repo, ws, more.join('/'), body)
    return notFound('route')
  }

  function uploadRoute(repo: HubRepo, ws: HubWorkspace, dir: string, req: http.IncomingMessage, body: Buffer, log: HubRequest): HttpAnswer {
    const boundary = /^multipart\/form-data;.*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(req.headers['content-type'] ?? '')
    if (!boundary) return fail(400, 'bad_request', 'expected multipart/form-data')
    let parts: Part[]
    try {
      parts = parseMultipart(body, boundary[1] ?? boundary[2])
    } catch (err) {
      return fail(400, 'bad_request', (err as Error).message)
    }
    log.parts = parts.map((p) => ({filename: p.filename, contentType: p.contentType, size: p.data.length}))
    const staged: Array<{path: string; file: HubFile}> = []
    for (const part of parts) {
      if (part.name !== 'file[]') return fail(400, 'bad_request', `unexpected form field ${part.name}`)
      if (part.filename === undefined) return fail(400, 'bad_request', 'file part without a filename')
      const path = safeJoin(dir, part.filename)
      if (!path) return fail(400, 'bad_request', `invalid path ${part.filename}`)
      let bytes = part.data
      if (/^application\/(x-)?gzip$/i.test(part.contentType ?? '')) {
        try {
          bytes = zlib.gunzipSync(bytes, {maxOutputLength: PART_LIMIT + 1})
        } catch {
          return fail(400, 'bad_request', `cannot gunzip ${part.filename}`)
        }
      }
      if (bytes.length > PART_LIMIT) return fail(413, 'payload_too_large', `${part.filename} exceeds 10 MiB`)
      staged.push({path, file: fileOf(bytes)})
    }
    const drop = Math.min(dropUploads, staged.length)
    dropUploads -= drop
    const kept = staged.slice(0, staged.length - drop)
    for (const {path, file} of kept) {
      ws.staged.set(path, file)
      repo.blobs.set(file.hash, file.size)
    }
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

  function commitRoute(repo: HubRepo, ws: HubWorkspace, branch: string, body: Buffer): HttpAnswer {
    const data = parseJson(body) as Record<string, unknown> | undefined
    if (!data || typeof data.message !== 'string' || typeof data.author !== 'string' || typeof data.email !== 'string') {
      return fail(400, 'bad_request', 'expected {message, author, email}')
    }
    const headId = repo.branches.get(branch)
    if (!headId) return notFound(`branch ${branch}`)
    const head = repo.commits.get(headId)!
    const base = repo.commits.get(ws.base)!
    const changes = changesOf(repo, ws)
    if (headId !== ws.base) {
      const conflicts = changes.filter((c) => head.tree.get(c.path)?.hash !== base.tree.get(c.path)?.hash)
      if (conflicts.length) return fail(409, 'workspace is behind', `${conflicts[0].path} also changed on ${branch} since the workspace was created`)
    }
    const tree = new Map(head.tree)
    for (const c of changes) {
      if (c.file) tree.set(c.path, c.file)
      else tree.delete(c.path)
    }
    const same = tree.size === head.tree.size && [...tree].every(([p, f]) => head.tree.get(p)?.hash === f.hash)
    if (same) return fail(422, 'unprocessable_entity', 'nothing to commit: no changes staged')
    const commit = makeCommit(repo, [headId], tree, {message: data.message, author: data.author, email: data.email})
    repo.branches.set(branch, commit.id)
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
      requests.push(log)
      let answer: HttpAnswer
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
          answer = route(method, segs, url.searchParams, req, Buffer.concat(chunks), log)
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
    },
    failNext(fault) {
      faults.push({...fault, left: fault.times ?? 1})
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
