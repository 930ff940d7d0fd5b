import * as http from 'node:http'
import type {AddressInfo} from 'node:net'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {isObjectId} from '../core/hash.js'
import type {Workspace} from '../workspace/workspace.js'
import {PyramidCache} from './pyramid/pyramid-cache.js'
import {THUMB_SIZES, WORKING} from './repo-view.js'
import {type RouteContext, Router} from './router.js'
import {type ApiReply, pyramidCacheFile} from './viewer-api.js'
import {type Asset, loadWebAssets} from './web-assets.js'
import {LEAF_ZOOM, MIN_ZOOM_LIMIT} from './web/geometry.js'
import {ViewerWorkerClient} from './worker/viewer-worker-client.js'

export interface ServeOptions {
  host?: string
  port?: number
  /** Build HEAD's map pyramid in the background right after start (default true). */
  warm?: boolean
  /** Image jobs at once in the worker (default: two per core, 2 to 4). */
  concurrency?: number
  /** Adds routes next to the viewer's (an API, say); methods other than GET are answered once a route uses them. */
  routes?: (router: Router) => void
}

export interface RunningServer {
  url: string
  host: string
  port: number
  /** Resolves once HEAD's pyramid is built (immediately when warming is off or there are no commits). */
  warmed: Promise<void>
  /** Resolves once every image of HEAD has its perceptual hash cached, after `warmed`. */
  signed: Promise<void>
  /** Calls the worker's ViewerApi directly (tests, the bench). */
  call(method: string, ...args: unknown[]): Promise<ApiReply>
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
const ID = '([0-9a-f]{64})'

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}

/**
 * `tilesync serve`: a read-only web app over the repository. This thread only answers HTTP:
 * it checks every request, serves the page's files from memory and finished map images
 * straight from the pyramid cache, and hands everything else to the viewer's worker thread
 * (worker/viewer-worker.ts), where history is read and images are made. So it answers while
 * a map is being built, and stops at once when asked.
 *
 * Only the routes below are answered, each an exact path or anchored pattern (no path is
 * ever mapped to a file); images are looked up by object id in the store (or the working
 * database) and checked against their hash.
 */
export async function startServer(ws: Workspace, options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1'
  const assets = loadWebAssets()
  const worker = new ViewerWorkerClient(ws.repo.root, {concurrency: options.concurrency})
  const cacheFile = pyramidCacheFile(ws)
  let cache: PyramidCache | undefined
  // Finished images straight from the cache file; any trouble with it and the worker answers instead.
  const readCache = (): {image(layer: string, key: string): Buffer | undefined} => ({
    image(layer, key) {
      try {
        cache ??= PyramidCache.openForReading(cacheFile)
        return cache?.image(layer, key)
      } catch {
        return undefined
      }
    },
  })
  const router = viewerRoutes({assets, worker, readCache})
  options.routes?.(router)
  const server = http.createServer((req, res) => {
    handle(router, req, res, server).catch((error: unknown) => {
      sendError(res, error)
    })
  })
  server.keepAliveTimeout = 5_000
  await worker.start()
  try {
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
  } catch (error) {
    await worker.close()
    throw error
  }
  const port = (server.address() as AddressInfo).port
  const shown = host.includes(':') ? `[${host}]` : host
  let warmed: Promise<void> = Promise.resolve()
  let signed: Promise<void> = Promise.resolve()
  if (options.warm ?? true) {
    warmed = (async () => {
      if (!(await ws.repo.refs.headCommit())) return
      await worker.call('build', 'HEAD')
    })().catch(() => {})
    // Then the perceptual hashes of HEAD's images, for the compare view's re-encoded marks and `similar`.
    signed = warmed.then(async () => {
      if (await ws.repo.refs.headCommit()) await worker.call('warmSignatures', 'HEAD')
    }).catch(() => {})
  }
  return {
    url: `http://${shown}:${port}/`, host, port, warmed, signed,
    call: (method, ...args) => worker.call(method, ...args),
    close: async () => {
      server.closeAllConnections()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      await worker.close()
      cache?.close()
      await closed
    },
  }
}

interface RouteDeps {
  assets: Map<string, Asset>
  worker: ViewerWorkerClient
  readCache: () => {image(layer: string, key: string): Buffer | undefined}
}

/** The viewer's routes. Other features add theirs to the same router (see router.ts). */
export function viewerRoutes({assets, worker, readCache}: RouteDeps): Router {
  const router = new Router()
  const asset = (url: string) => ({res}: RouteContext): void => {
    const a = assets.get(url)
    if (!a) throw new HttpError(404, 'not found')
    sendBytes(res, 200, a.type, a.bytes, 'no-cache')
  }
  const reply = async (res: http.ServerResponse, answer: Promise<ApiReply>, etag?: string): Promise<void> => {
    const r = await answer
    if ('json' in r) return sendBytes(res, 200, 'application/json; charset=utf-8', Buffer.from(r.json), 'no-store')
    return sendImage(res, r.type, r.bytes, etag ?? '')
  }

  // A browser that holds an image asks again with its ETag: answer 304 only for an id this repository has.
  const notModifiedKnown = async (req: http.IncomingMessage, res: http.ServerResponse, id: string): Promise<boolean> => {
    if (!req.headers['if-none-match']) return false
    const known = await worker.call('knows', id)
    if (!('json' in known) || known.json !== 'true') throw new TilesyncError('OBJECT_MISSING', `no object ${id}`)
    return notModified(req, res, id)
  }

  router.get('/', asset('/'))
  router.get('/index.html', asset('/'))
  router.get('/app.css', asset('/app.css'))
  router.get(/^\/app\/([a-z0-9-]+\.js)$/, ({res, params}) => asset(`/app/${params[0]}`)({res} as RouteContext))
  router.get('/vendor/leaflet.js', asset('/vendor/leaflet.js'))
  router.get('/vendor/leaflet.css', asset('/vendor/leaflet.css'))
  router.get('/favicon.ico', ({res}) => {
    res.writeHead(204, {'Cache-Control': IMMUTABLE})
    res.end()
  })

  router.get('/api/refs', ({req, res}) => reply(res, worker.call('refs')))
  router.get('/api/log', ({req, res, query}) => {
    const rev = query.get('rev')
    return reply(res, worker.call('log', rev === null ? null : revision(rev, false), clampInt(query.get('limit'), 1, 10_000, 200)))
  })
  router.get('/api/diff', ({req, res, query}) => reply(res, worker.call('diff', revision(query.get('from') ?? 'HEAD', false), revision(query.get('to') ?? WORKING, true))))
  router.get('/api/perceptual', ({req, res, query}) => reply(res, worker.call('perceptual', revision(query.get('from') ?? 'HEAD', false), revision(query.get('to') ?? WORKING, true))))
  router.get('/api/tiles', ({req, res, query}) => {
    const box = (query.get('bbox') ?? '').split(',').map((v) => coordinate(v))
    if (box.length !== 4) throw new HttpError(400, 'bbox must be x0,y0,x1,y1')
    return reply(res, worker.call('tiles', revision(query.get('rev') ?? 'HEAD', true), box))
  })
  router.get('/api/tile-history', ({req, res, query}) => reply(res, worker.call('tileHistory', revision(query.get('rev') ?? 'HEAD', true), coordinate(query.get('x')), coordinate(query.get('y')))))

  // The map: an index per revision, then images named by what they show (immutable).
  router.get('/api/pyramid', ({req, res, query}) => {
    const layer = query.get('layer')
    return reply(res, worker.call('pyramidIndex', revision(query.get('rev') ?? 'HEAD', true), layer === null ? null : layerName(layer)))
  })
  router.get('/api/pyramid/status', ({req, res}) => reply(res, worker.call('pyramidStatus')))
  router.get(new RegExp(`^/api/pyramid/([^/]+)/(-\\d+)/${ID}\\.webp$`), ({req, res, params}) => {
    const layer = layerName(decodeSegment(params[0]))
    const zoom = Number(params[1])
    if (zoom > LEAF_ZOOM || zoom < MIN_ZOOM_LIMIT) throw new HttpError(400, `a map image by key is at zoom ${LEAF_ZOOM} or coarser`)
    const etag = `${zoom}/${params[2]}`
    if (notModified(req, res, etag)) return
    const hit = readCache().image(layer, params[2])
    if (hit) return sendImage(res, 'image/webp', hit, etag)
    return reply(res, worker.call('pyramidImage', layer, zoom, params[2]), etag)
  })
  router.get(new RegExp(`^/api/pyramid/([^/]+)/(-[123])/${ID}/(\\d{1,2})/(\\d{1,2})\\.webp$`), ({req, res, params}) => {
    const layer = layerName(decodeSegment(params[0]))
    const [zoom, leaf, i, j] = [Number(params[1]), params[2], Number(params[3]), Number(params[4])]
    const etag = `${zoom}/${leaf}/${i}/${j}`
    if (notModified(req, res, etag)) return
    const hit = readCache().image(layer, `${leaf}:${zoom}:${i}:${j}`)
    if (hit) return sendImage(res, 'image/webp', hit, etag)
    return reply(res, worker.call('pyramidPart', layer, zoom, leaf, i, j), etag)
  })
  router.get(new RegExp(`^/api/pyramid/([^/]+)/0/${ID}/(\\d{1,2})/(\\d{1,2})\\.png$`), ({req, res, params}) => {
    const layer = layerName(decodeSegment(params[0]))
    const etag = `0/${params[1]}/${params[2]}/${params[3]}`
    if (notModified(req, res, etag)) return
    return reply(res, worker.call('pyramidTile', layer, params[1], Number(params[2]), Number(params[3])), etag)
  })

  router.get(/^\/api\/thumb\/(\d+)\/([^/]+)\.webp$/, async ({req, res, params}) => {
    const size = Number(params[0])
    if (!(THUMB_SIZES as readonly number[]).includes(size)) throw new HttpError(400, `thumbnail size must be one of ${THUMB_SIZES.join(', ')}`)
    const id = objectId(params[1])
    if (await notModifiedKnown(req, res, id)) return
    return reply(res, worker.call('thumb', id, size), id)
  })
  router.get(/^\/api\/object\/([^/]+)\.png$/, async ({req, res, params, query}) => {
    const id = objectId(params[0])
    const download = query.get('download')
    if (download !== null) res.setHeader('Content-Disposition', `attachment; filename="${safeFileName(download, id)}"`)
    if (await notModifiedKnown(req, res, id)) return
    return reply(res, worker.call('object', id), id)
  })
  return router
}

async function handle(router: Router, req: http.IncomingMessage, res: http.ServerResponse, server: http.Server): Promise<void> {
  setCommonHeaders(res)
  const method = req.method ?? 'GET'
  if (!router.methods().includes(method)) {
    res.setHeader('Allow', router.methods().join(', '))
    throw new HttpError(405, `${method} is not allowed: this server is read-only`)
  }
  const local = server.address() as AddressInfo
  if (isLoopback(local.address) && !hostAllowed(req.headers.host, local.port)) {
    // Only pages served from this address may read it (no DNS rebinding from other sites).
    throw new HttpError(403, 'unexpected Host header')
  }
  const raw = req.url ?? '/'
  if (!raw.startsWith('/') || raw.includes('\\')) throw new HttpError(400, 'bad request path')
  const url = new URL(raw, 'http://localhost')
  const found = router.match(method, url.pathname)
  if (found.kind === 'wrong-method') {
    res.setHeader('Allow', found.allow.join(', '))
    throw new HttpError(405, `${method} is not allowed here`)
  }
  if (found.kind === 'none') throw new HttpError(404, 'not found')
  await found.handler({req, res, url, query: url.searchParams, params: found.params})
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

function layerName(value: string): string {
  if (value.length === 0 || value.length > 256 || /[\u0000-\u001f]/.test(value)) throw new HttpError(400, 'not a layer name')
  return value
}

function decodeSegment(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    throw new HttpError(400, 'bad escape in the path')
  }
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

function sendBytes(res: http.ServerResponse, status: number, type: string, bytes: Buffer, cache: string): void {
  res.writeHead(status, {'Content-Type': type, 'Content-Length': bytes.length, 'Cache-Control': cache})
  res.end(bytes)
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
  sendBytes(res, status, 'application/json; charset=utf-8', Buffer.from(JSON.stringify(body)), 'no-store')
}
