import type * as http from 'node:http'

import {errorJson} from '../cli/print-error.js'
import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {commit} from '../ops/commit.js'
import {pull} from '../ops/pull.js'
import {push} from '../ops/push.js'
import {status} from '../ops/status.js'
import {readSyncLog} from '../ops/sync-log.js'
import type {TransportTuning} from '../remote/registry.js'
import {parseAuthor} from '../util/author.js'
import type {Progress} from '../util/progress.js'
import type {RouteContext, Router} from '../viewer/router.js'
import {Workspace} from '../workspace/workspace.js'
import {bearerMatches} from './api-token.js'
import {WriteGate} from './write-gate.js'

export interface SyncApiOptions {
  /** The repository's root: each operation opens it afresh, as a CLI run does. */
  root: string
  token: string
  /** Knobs for remotes' transports (tests). */
  transport?: TransportTuning
}

/** A dry run counts without a bar (and no bar is drawn on the server's terminal for a request). */
const SILENT: Progress = {enabled: false, start() {}, increment() {}, stop() {}}

/** Bodies are a few fields: anything larger is not a request of this API. */
const MAX_BODY = 64 * 1024

/** HTTP status of each error code; any other TilesyncError is 422 (understood, refused). */
const STATUS_OF: Partial<Record<string, number>> = {
  UNAUTHORIZED: 401,
  BAD_ARGUMENT: 400, MISSING_ARGUMENT: 400, UNKNOWN_FLAG: 400, BAD_NAME: 400,
  REMOTE_UNKNOWN: 404, REF_MISSING: 404, UNKNOWN_REVISION: 404, NO_COMMITS: 404,
  BUSY: 409, REMOTE_MOVED: 409, DIRTY: 409, MERGE_IN_PROGRESS: 409, MERGE_CONFLICT: 409, REPO_LOCKED: 409, DB_LOCKED: 409,
  REMOTE_AUTH: 502, REMOTE_UNREACHABLE: 502, REMOTE_PROTOCOL: 502, TRANSFER_FAILED: 502,
}

/**
 * The sync API `serve --api` adds next to the viewer: a pipeline commits, pushes and pulls
 * after each batch over HTTP. Every route needs `Authorization: Bearer TOKEN` (compared in
 * constant time; a request without it does nothing and gets 401). Bodies and answers are
 * JSON; an answer is what the CLI prints under --json, an error the CLI's error object with
 * its stable code. One write at a time (WriteGate): a second gets 409 BUSY naming the first.
 *
 *   GET  /api/status      working database vs HEAD, and the running operation's progress
 *   POST /api/commit      {message, author?}
 *   POST /api/push        {remote?, branch?, dry_run?, force?}
 *   POST /api/pull        {remote?, branch?, dry_run?}
 *   GET  /api/sync-log    the sync log (?remote=NAME&limit=N); /api/log is the viewer's commit log
 */
export function addSyncApiRoutes(router: Router, options: SyncApiOptions): WriteGate {
  const gate = new WriteGate()
  const open = () => Workspace.open(options.root)

  router.get('/api/status', guarded(options, async () => {
    const running = gate.running
    // While a commit or pull writes, the database is theirs: status then says only what runs.
    const working = running && running.op !== 'push' ? null : summarise(await status(await open()))
    return {running, last: gate.last, working}
  }))

  router.add('POST', '/api/commit', guarded(options, async (ctx) => {
    const body = await jsonBody(ctx.req, {message: 'string', author: 'string'})
    if (typeof body.message !== 'string' || !body.message.trim()) throw new TilesyncError('BAD_ARGUMENT', 'a commit needs {"message": "..."}', {hint: 'say what changed'})
    const author = typeof body.author === 'string' ? parseAuthor(body.author) : undefined
    return gate.run('commit', {message: body.message}, async () => commit(await open(), {message: body.message as string, author}))
  }))

  router.add('POST', '/api/push', guarded(options, async (ctx) => {
    const body = await jsonBody(ctx.req, {remote: 'string', branch: 'string', dry_run: 'boolean', force: 'boolean'})
    const params = {remote: body.remote, branch: body.branch, dry_run: body.dry_run === true, force: body.force === true}
    return gate.run('push', params, async (progress) => push(await open(), {
      remote: body.remote as string | undefined, branch: body.branch as string | undefined, dryRun: params.dry_run, force: params.force, progress, transport: options.transport,
    }))
  }))

  router.add('POST', '/api/pull', guarded(options, async (ctx) => {
    const body = await jsonBody(ctx.req, {remote: 'string', branch: 'string', dry_run: 'boolean'})
    const params = {remote: body.remote, branch: body.branch, dry_run: body.dry_run === true}
    return gate.run('pull', params, async (progress) => pull(await open(), {
      remote: body.remote as string | undefined, branch: body.branch as string | undefined, dryRun: params.dry_run, transport: options.transport, progress: params.dry_run ? SILENT : progress,
    }))
  }))

  router.get('/api/sync-log', guarded(options, async ({query}) => {
    const entries = await readSyncLog((await open()).repo, query.get('remote') ?? undefined)
    const limit = Number(query.get('limit') ?? 100)
    if (!Number.isInteger(limit) || limit < 1) throw new TilesyncError('BAD_ARGUMENT', 'limit must be a positive integer')
    return {entries: entries.slice(-limit)}
  }))
  return gate
}

/** The status without the per-tile list (which can hold 100,000 entries): counts, head, scan. */
function summarise(s: Awaited<ReturnType<typeof status>>) {
  return {branch: s.branch, head: s.head, database: s.database, clean: s.clean, merging: s.merging, summary: s.changes.summary, schemaChanged: s.changes.schemaChanged, scan: s.scan}
}

/** Authentication first, then the handler; every answer JSON, every error the CLI's error object. */
function guarded(options: SyncApiOptions, handler: (ctx: RouteContext) => Promise<unknown>) {
  return async (ctx: RouteContext): Promise<void> => {
    let status = 200
    let body: unknown
    try {
      if (!bearerMatches(ctx.req.headers.authorization, options.token)) {
        ctx.req.resume()
        ctx.res.setHeader('WWW-Authenticate', 'Bearer realm="tilesync"')
        throw new TilesyncError('UNAUTHORIZED', 'missing or wrong API token', {hint: 'send Authorization: Bearer TOKEN, the token serve --api was started with'})
      }
      body = await handler(ctx)
    } catch (error) {
      if (isTilesyncError(error)) {
        status = STATUS_OF[error.code] ?? 422
        body = errorJson(error)
      } else {
        // Unexpected: say what happened, never where or with what.
        status = 500
        body = {status: 'error', error: {code: 'INTERNAL', message: error instanceof Error ? error.message.split('\n')[0] : 'internal error'}}
      }
    }
    const bytes = Buffer.from(JSON.stringify(body) + '\n')
    ctx.res.writeHead(status, {'Content-Type': 'application/json; charset=utf-8', 'Content-Length': bytes.length, 'Cache-Control': 'no-store'})
    ctx.res.end(bytes)
  }
}

type FieldType = 'string' | 'boolean'

/**
 * The request body: a JSON object of known fields only, so a misspelled `dryRun` is refused
 * instead of silently running a real push.
 */
async function jsonBody(req: http.IncomingMessage, fields: Record<string, FieldType>): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new TilesyncError('BAD_ARGUMENT', `request body over ${MAX_BODY} bytes`)
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return {}
  if (type !== 'application/json') throw new TilesyncError('BAD_ARGUMENT', 'the body must be JSON (Content-Type: application/json)')
  let value: unknown
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new TilesyncError('BAD_ARGUMENT', 'the body is not valid JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TilesyncError('BAD_ARGUMENT', 'the body must be a JSON object')
  const obj = value as Record<string, unknown>
  for (const [k, v] of Object.entries(obj)) {
    const want = fields[k]
    if (!want) throw new TilesyncError('BAD_ARGUMENT', `unknown field "${k.slice(0, 40)}"`, {hint: `fields: ${Object.keys(fields).join(', ')}`})
    if (v !== null && typeof v !== want) throw new TilesyncError('BAD_ARGUMENT', `"${k}" must be a ${want}`)
  }
  for (const k of Object.keys(obj)) if (obj[k] === null) delete obj[k]
  return obj
}
