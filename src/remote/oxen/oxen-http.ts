import {TilesyncError, type ErrorCode} from '../../core/errors.js'

/**
 * One HTTP exchange with an oxen hub, with the hub's retry rules and its failures turned into
 * one-line TilesyncErrors. Kept apart from OxenClient so the client reads as a list of
 * endpoints and the retry/error policy lives in one place.
 *
 * Retry policy (the official client's): 5xx and network failures up to `retries` times with
 * exponential backoff; 429 waits for Retry-After (the repo maintenance lock), up to
 * `busyRetries` times; every other 4xx fails at once. Requests that are not idempotent (a
 * commit) retry only on 429, which the hub answers before doing anything.
 */

export interface OxenHttpOptions {
  /** Origin, e.g. https://hub.oxen.ai or http://127.0.0.1:3000. */
  origin: string
  /** Host as shown to users and matched in auth_config.toml, e.g. hub.oxen.ai. */
  host: string
  token: string
  userAgent: string
  retries: number
  busyRetries: number
  backoffMs: number
  maxRetryAfterMs: number
  timeoutMs: number
  onRetry?: (event: OxenRetryEvent) => void
}

/** Told before each wait, so a CLI can say "hub busy, retrying in 5s". */
export interface OxenRetryEvent {
  what: string
  attempt: number
  waitMs: number
  reason: string
}

export interface OxenRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  /** Path after the origin, already percent-encoded. */
  path: string
  query?: Record<string, string | number>
  json?: unknown
  body?: Buffer
  contentType?: string
  /** What is being done, for messages: "list branches", "upload 12 files". */
  what: string
  /** Default true. False: retried only on 429, never after the hub may have acted. */
  idempotent?: boolean
  /** Statuses handed back to the caller instead of thrown (e.g. 404 for "does it exist"). */
  accept?: number[]
}

export interface OxenJsonResponse {
  status: number
  body: Record<string, unknown>
}

export interface OxenBytesResponse {
  status: number
  bytes: Buffer
  contentType: string
}


export class OxenHttp {
  constructor(readonly options: OxenHttpOptions) {}

  /** A request whose answer must be JSON with `status` other than "error". */
  async json(req: OxenRequest): Promise<OxenJsonResponse> {
    const res = await this.send(req)
    const body = parseJsonBody(res.bytes)
    if (req.accept?.includes(res.status)) return {status: res.status, body: body ?? {}}
    if (!body) {
      throw new TilesyncError('REMOTE_PROTOCOL', `${this.options.host} answered HTTP ${res.status} ${describeType(res.contentType)} instead of JSON when asked to ${req.what}`, {
        hint: 'check the oxen host setting; a proxy may be in the way',
        data: {status: res.status},
      })
    }
    if (body.status === 'error') {
      throw new TilesyncError('REMOTE_PROTOCOL', `${this.options.host} reported an error (HTTP ${res.status}) when asked to ${req.what}: ${this.serverMessage(body) || 'no detail given'}`, {
        data: {status: res.status, serverMessage: this.serverMessage(body)},
      })
    }
    return {status: res.status, body}
  }

  /** A request answered with raw bytes (file download). */
  async bytes(req: OxenRequest): Promise<OxenBytesResponse> {
    return this.send(req)
  }

  /** Sends with retries; returns any 2xx (or accepted) answer, throws a TilesyncError otherwise. */
  private async send(req: OxenRequest): Promise<OxenBytesResponse> {
    const o = this.options
    let failures = 0
    let busy = 0
    for (;;) {
      let res: OxenBytesResponse & {retryAfter: string | null}
      try {
        res = await this.once(req)
      } catch (err) {
        // Nothing came back: the request may or may not have reached the hub.
        // Scrub before shortening, so a cut can never leave part of the token behind.
        const reason = this.scrub(networkReason(err)).slice(0, 200)
        if (req.idempotent !== false && failures < o.retries) {
          failures++
          await this.wait(req, failures, backoff(o.backoffMs, failures), reason)
          continue
        }
        throw new TilesyncError('REMOTE_UNREACHABLE', `cannot reach ${o.host} to ${req.what}: ${reason}`, {
          hint: req.idempotent === false ? 'it may or may not have been applied; check the hub before retrying' : 'check the network and the oxen host, then retry',
          // No `cause`: a transport error may quote the request headers, token included.
        })
      }
      if (res.status >= 200 && res.status < 300) return res
      if (req.accept?.includes(res.status)) return res

      if (res.status === 429 && busy < o.busyRetries) {
        busy++
        const waitMs = Math.min(retryAfterMs(res.retryAfter) ?? 5000, o.maxRetryAfterMs)
        await this.wait(req, busy, waitMs, 'hub busy (HTTP 429)')
        continue
      }
      if (res.status >= 500 && req.idempotent !== false && failures < o.retries) {
        failures++
        await this.wait(req, failures, backoff(o.backoffMs, failures), `HTTP ${res.status}`)
        continue
      }
      throw this.statusError(req, res)
    }
  }

  private async once(req: OxenRequest): Promise<OxenBytesResponse & {retryAfter: string | null}> {
    const o = this.options
    const url = new URL(o.origin + req.path)
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, String(v))
    const headers: Record<string, string> = {
      authorization: `Bearer ${o.token}`,
      'user-agent': o.userAgent,
      accept: 'application/json, */*',
    }
    let body: Buffer | string | undefined
    if (req.json !== undefined) {
      body = JSON.stringify(req.json)
      headers['content-type'] = 'application/json'
    } else if (req.body) {
      body = req.body
      if (req.contentType) headers['content-type'] = req.contentType
    }
    const res = await fetch(url, {method: req.method, headers, body, signal: AbortSignal.timeout(o.timeoutMs), redirect: 'error'})
    const bytes = Buffer.from(await res.arrayBuffer())
    return {status: res.status, bytes, contentType: res.headers.get('content-type') ?? '', retryAfter: res.headers.get('retry-after')}
  }

  private async wait(req: OxenRequest, attempt: number, waitMs: number, reason: string): Promise<void> {
    this.options.onRetry?.({what: req.what, attempt, waitMs, reason})
    await new Promise((resolve) => setTimeout(resolve, waitMs))
  }

  /** The one-line error for a final non-2xx answer. `data.status` lets callers refine it. */
  private statusError(req: OxenRequest, res: OxenBytesResponse): TilesyncError {
    const host = this.options.host
    const body = parseJsonBody(res.bytes)
    const detail = body ? this.serverMessage(body) : ''
    const suffix = detail ? `: ${detail}` : ''
    const data = {status: res.status, serverMessage: detail}
    const make = (code: ErrorCode, message: string, hint?: string) => new TilesyncError(code, message, {hint, data})
    const s = res.status
    if (s === 401 || s === 403) {
      return make('REMOTE_AUTH', `${host} refused the oxen API token (HTTP ${s}) when asked to ${req.what}`, `set OXEN_API_TOKEN or run \`oxen config --auth ${host} YOUR_TOKEN\``)
    }
    if (s === 404) return make('OBJECT_MISSING', `not found (HTTP 404) when trying to ${req.what}${suffix}`)
    if (s === 409) {
      return make('REMOTE_MOVED', `hub branch moved / workspace is behind (HTTP 409) while trying to ${req.what}${suffix}`, 'pull first, then push again')
    }
    if (s === 413) return make('TRANSFER_FAILED', `${host} refused the request to ${req.what} as too large (HTTP 413)`, 'send fewer or smaller files per request')
    if (s === 426) return make('REMOTE_PROTOCOL', `${host} requires a newer client (HTTP 426) to ${req.what}`, 'update tilesync')
    if (s === 429) return make('REMOTE_UNREACHABLE', `${host} stayed busy (HTTP 429) while trying to ${req.what}`, 'the repository is locked for maintenance; retry later')
    if (s >= 500) {
      const what = body ? `HTTP ${s}${suffix}` : `HTTP ${s} ${describeType(res.contentType)} instead of JSON (a proxy or an outage)`
      const n = this.options.retries + 1
      const tries = req.idempotent === false ? '' : ` after ${n} ${n === 1 ? 'try' : 'tries'}`
      return make('REMOTE_UNREACHABLE', `${host} failed to ${req.what}${tries}: ${what}`, req.idempotent === false
        ? 'it may or may not have been applied; check the hub before retrying'
        : 'retry later')
    }
    return make('REMOTE_PROTOCOL', `${host} rejected the request to ${req.what} (HTTP ${s})${suffix}`)
  }

  /** The server's own words, made safe for a one-line message (never carrying the token). */
  serverMessage(body: Record<string, unknown>): string {
    const err = body.error as Record<string, unknown> | undefined
    const candidates = [body.status_description, err?.detail, err?.title, body.status_message]
    const text = candidates.find((c): c is string => typeof c === 'string' && c.trim() !== '') ?? ''
    return this.scrub(text).replace(/\s+/g, ' ').trim().slice(0, 300)
  }

  /** Removes the token from any text that might reach a user. */
  scrub(text: string): string {
    const t = this.options.token
    const out = t ? text.split(t).join('***') : text
    return out.replace(/(bearer\s+)[^\s"',;]+/gi, '$1***')
  }
}

/** Parses a JSON object body; null when it is not one. Leading keep-alive newlines are fine. */
export function parseJsonBody(bytes: Buffer): Record<string, unknown> | null {
  const text = bytes.toString('utf8').trim()
  if (!text.startsWith('{')) return null
  try {
    const v = JSON.parse(text)
    return v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : null
  } catch {
    return null
  }
}

function describeType(contentType: string): string {
  const base = contentType.split(';')[0].trim()
  if (!base) return 'with a body'
  if (base === 'text/html') return 'with an HTML page'
  return `with ${base}`
}

function backoff(baseMs: number, attempt: number): number {
  const ms = baseMs * 2 ** (attempt - 1)
  return Math.round(ms * (0.8 + Math.random() * 0.4))
}

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined
  const v = value.trim()
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000)
  const at = Date.parse(v)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

function networkReason(err: unknown): string {
  const e = err as {name?: string; message?: string; cause?: {code?: string; message?: string}}
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'the request timed out'
  const code = e?.cause?.code
  if (code) return code
  return (e?.cause?.message ?? e?.message ?? 'network error').replace(/\s+/g, ' ')
}
