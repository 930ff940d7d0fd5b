import * as http from 'node:http'
import type {AddressInfo} from 'node:net'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {isObjectId} from '../core/hash.js'
import type {Workspace} from '../workspace/workspace.js'
import {APP_CSS} from './assets/app-css.js'
import {APP_JS} from './assets/app-js.js'
import {INDEX_HTML} from './assets/index-html.js'
import {isPng} from './images.js'
import {RepoView, THUMB_SIZES, WORKING} from './repo-view.js'

export interface ServeOptions {
  host?: string
  port?: number
  /** Make HEAD's map sprites in the background right after start (default true). */
  warm?: boolean
}

export interface RunningServer {
  url: string
  host: string
  port: number
  view: RepoView
  /** Resolves once HEAD's sprites are made (immediately when warming is off). */
  warmed: Promise<void>
  close(): Promise<void>
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]'])

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/** The warning `serve --host` prints when the server is reachable from other machines. */
export function hostWarning(host: string): string | null {
  if (isLoopback(host)) return null
  return `serving on ${host}: anyone who can reach this machine on that address can read every tile and commit of this repository`
}

const REVISION = /^[A-Za-z0-9._/@{}~^-]{1,200}$/
const IMMUTABLE = 'public, max-age=31536000, immutable'

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}

/**
 * `tilesync serve`: a read-only web app over the repository. Only GET is answered; every
 * route is an exact pattern (no path is ever mapped to a file), images are looked up by
 * object id in the store (or the working database) and checked against their hash.
 */
export async function startServer(ws: Workspace, options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1'
  const view = new RepoView(ws)
  const server = http.createServer((req, res) => {
    handle(view, req, res, server).catch((error: unknown) => {
      sendError(res, error)
    })
  })
  server.keepAliveTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') reject(new TilesyncError('BAD_ARGUMENT', `port ${options.port ?? 7070} on ${host} is in use`, {hint: 'pick another with --port, or --port 0 for any free port'}))
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') reject(new TilesyncError('BAD_ARGUMENT', `cannot listen on ${host}: no such address on this machine`, {hint: 'use --host 127.0.0.1'}))
      else reject(error)
    })
    server.listen(options.port ?? 7070, host, () => {
      server.removeAllListeners('error')
      server.on('error', () => {})
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const shown = host.includes(':') ? `[${host}]` : host
  let warmed: Promise<void> = Promise.resolve()
  if (options.warm ?? true) {
    warmed = (async () => {
      if (!(await ws.repo.refs.headCommit())) return
      await view.warm(await view.map('HEAD'))
    })().catch(() => {})
  }
  return {
    url: `http://${shown}:${port}/`, host, port, view, warmed,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
      view.close()
    }),
  }
}

async function handle(view: RepoView, req: http.IncomingMessage, res: http.ServerResponse, server: http.Server): Promise<void> {
  setCommonHeaders(res)
  if (req.method !== 'GET') {
    res.setHeader('Allow', 'GET')
    throw new HttpError(405, `${req.method} is not allowed: this server is read-only`)
  }
  const local = server.address() as AddressInfo
  if (isLoopback(local.address) && !hostAllowed(req.headers.host, local.port)) {
    // Only pages served from this address may read it (no DNS rebinding from other sites).
    throw new HttpError(403, 'unexpected Host header')
  }
  const raw = req.url ?? '/'
  if (!raw.startsWith('/') || raw.includes('\\')) throw new HttpError(400, 'bad request path')
  const url = new URL(raw, 'http://localhost')
  const p = url.pathname
  const q = url.searchParams
  let m: RegExpExecArray | null

  if (p === '/' || p === '/index.html') return send(res, 200, 'text/html; charset=utf-8', INDEX_HTML, 'no-cache')
  if (p === '/app.js') return send(res, 200, 'text/javascript; charset=utf-8', APP_JS, 'no-cache')
  if (p === '/app.css') return send(res, 200, 'text/css; charset=utf-8', APP_CSS, 'no-cache')

  if (p === '/favicon.ico') {
    res.writeHead(204, {'Cache-Control': IMMUTABLE})
    res.end()
    return
  }
  if (p === '/api/refs') return json(res, await view.refs())
  if (p === '/api/log') {
    const rev = q.get('rev') ?? undefined
    const limit = clampInt(q.get('limit'), 1, 10_000, 200)
    const head = await view.ws.repo.refs.headCommit()
    if (!rev && !head) return json(res, {commits: []})
    return json(res, {commits: await view.log(rev === undefined ? undefined : revision(rev, false), limit)})
  }
  if (p === '/api/map') return json(res, await view.map(revision(q.get('rev') ?? 'HEAD', true)))
  if (p === '/api/diff') {
    const from = revision(q.get('from') ?? 'HEAD', false)
    const to = revision(q.get('to') ?? WORKING, true)
    return json(res, await view.diff(from, to))
  }
  if (p === '/api/tiles') {
    const box = (q.get('bbox') ?? '').split(',').map((v) => coordinate(v))
    if (box.length !== 4) throw new HttpError(400, 'bbox must be x0,y0,x1,y1')
    return json(res, await view.tiles(revision(q.get('rev') ?? 'HEAD', true), [box[0], box[1], box[2], box[3]]))
  }
  if (p === '/api/tile-history') {
    const x = coordinate(q.get('x'))
    const y = coordinate(q.get('y'))
    return json(res, await view.tileHistory(revision(q.get('rev') ?? 'HEAD', true), x, y))
  }
  if ((m = /^\/api\/sprite\/([^/]+)\.webp$/.exec(p))) {
    const id = objectId(m[1])
    if (!(await view.hasSprite(id))) throw new HttpError(404, `no sprite ${id}`)
    if (notModified(req, res, id)) return
    const bytes = await view.sprite(id)
    if (!bytes) throw new HttpError(404, `no sprite ${id}`)
    return sendImage(res, 'image/webp', bytes, id)
  }
  if ((m = /^\/api\/thumb\/(\d+)\/([^/]+)\.webp$/.exec(p))) {
    const size = Number(m[1])
    if (!(THUMB_SIZES as readonly number[]).includes(size)) throw new HttpError(400, `thumbnail size must be one of ${THUMB_SIZES.join(', ')}`)
    const id = objectId(m[2])
    await mustKnow(view, id)
    if (notModified(req, res, id)) return
    return sendImage(res, 'image/webp', await view.thumbnail(id, size), id)
  }
  if ((m = /^\/api\/object\/([^/]+)\.png$/.exec(p))) {
    const id = objectId(m[1])
    const download = q.get('download')
    if (download !== null) res.setHeader('Content-Disposition', `attachment; filename="${safeFileName(download, id)}"`)
    await mustKnow(view, id)
    if (notModified(req, res, id)) return
    const bytes = await view.blob(id)
    if (!isPng(bytes)) throw new HttpError(404, `object ${id} is not a PNG image`)
    return sendImage(res, 'image/png', bytes, id)
  }
  throw new HttpError(404, 'not found')
}

function hostAllowed(header: string | undefined, port: number): boolean {
  if (!header) return false
  const allowed = ['127.0.0.1', 'localhost', '[::1]']
  return allowed.some((h) => header === `${h}:${port}` || (port === 80 && header === h))
}

function setCommonHeaders(res: http.ServerResponse): void {
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.setHeader('Referrer-Policy', 'no-referrer')
  res.setHeader('X-Frame-Options', 'DENY')
  res.setHeader('Content-Security-Policy', "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
}

function revision(value: string, allowWorking: boolean): string {
  if (value === WORKING) {
    if (allowWorking) return value
    throw new HttpError(400, 'the working database can only be the second side of a diff')
  }
  if (!REVISION.test(value) || value.includes('..') || value.startsWith('/') || value.includes('//')) throw new HttpError(400, `"${value.slice(0, 80)}" is not a revision`)
  return value
}

function objectId(value: string): string {
  if (!isObjectId(value)) throw new HttpError(400, 'not an object id (64 lowercase hex digits)')
  return value
}

async function mustKnow(view: RepoView, id: string): Promise<void> {
  if (!(await view.knows(id))) throw new HttpError(404, `no object ${id}`)
}

function coordinate(value: string | null): number {
  const n = Number(value)
  if (value === null || value.trim() === '' || !Number.isSafeInteger(n)) throw new HttpError(400, 'x and y must be integers')
  return n
}

function clampInt(value: string | null, lo: number, hi: number, fallback: number): number {
  const n = Number(value)
  return value === null || !Number.isInteger(n) ? fallback : Math.max(lo, Math.min(hi, n))
}

function safeFileName(name: string, id: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 120)
  return cleaned.toLowerCase().endsWith('.png') ? cleaned : `${cleaned || id.slice(0, 16)}.png`
}

function notModified(req: http.IncomingMessage, res: http.ServerResponse, id: string): boolean {
  const etag = `"${id}"`
  const inm = req.headers['if-none-match']
  if (!inm || !inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) return false
  res.writeHead(304, {ETag: etag, 'Cache-Control': IMMUTABLE})
  res.end()
  return true
}

function sendImage(res: http.ServerResponse, type: string, bytes: Buffer, id: string): void {
  res.writeHead(200, {'Content-Type': type, 'Content-Length': bytes.length, ETag: `"${id}"`, 'Cache-Control': IMMUTABLE})
  res.end(bytes)
}

function send(res: http.ServerResponse, status: number, type: string, body: string, cache: string): void {
  const bytes = Buffer.from(body)
  res.writeHead(status, {'Content-Type': type, 'Content-Length': bytes.length, 'Cache-Control': cache})
  res.end(bytes)
}

function json(res: http.ServerResponse, data: unknown): void {
  send(res, 200, 'application/json; charset=utf-8', JSON.stringify(data, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)), 'no-store')
}

const STATUS_OF: Record<string, number> = {
  UNKNOWN_REVISION: 404, NO_COMMITS: 404, REVISION_OUT_OF_RANGE: 404, TILE_MISSING: 404, OBJECT_MISSING: 404,
  BAD_REVISION: 400, AMBIGUOUS_REVISION: 400, BAD_ARGUMENT: 400,
}

function sendError(res: http.ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  let status = 500
  let body: {error: string; code?: string; hint?: string}
  if (error instanceof HttpError) {
    status = error.status
    body = {error: error.message}
  } else if (isTilesyncError(error)) {
    status = STATUS_OF[error.code] ?? 500
    body = {error: error.message, code: error.code, ...(error.hint ? {hint: error.hint} : {})}
  } else {
    // Unexpected failures (an undecodable image, say) say what happened, not where.
    body = {error: error instanceof Error ? error.message.split('\n')[0] : 'internal error'}
    if (/unsupported image format|Input buffer/i.test(body.error)) status = 404
  }
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body), 'no-store')
}
