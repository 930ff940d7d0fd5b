import * as fs from 'node:fs'
import * as http from 'node:http'
import type {AddressInfo} from 'node:net'
import {createRequire} from 'node:module'
import * as os from 'node:os'
import * as path from 'node:path'

/** s3rver's test credentials: it signs with these and only these. */
export const S3RVER_KEY = 'S3RVER'
export const S3RVER_SECRET = 'S3RVER'

interface S3rverInstance {
  callback(): (req: http.IncomingMessage, res: http.ServerResponse) => void
  configureBuckets(): Promise<unknown>
  store: {getMetadata(bucket: string, key: string): Promise<{etag: string}>}
  logger: {exceptions: {unhandle(): void}; close(): void}
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor

export interface RequestLogEntry {
  method: string
  url: string
  /** Set when the front answered 412 itself. */
  preconditionFailed?: boolean
  /** The Range header of a ranged GET. */
  range?: string
}

export interface RequestLog {
  entries: RequestLogEntry[]
  /** Requests seen so far, by HTTP method. */
  byMethod: Record<string, number>
  /** Requests with this method (and, if given, whose URL contains `urlPart`). */
  count(method: string, urlPart?: string): number
  reset(): void
}

export interface S3TestServer {
  /** http://127.0.0.1:PORT, path-style. */
  endpoint: string
  requestLog: RequestLog
  stop(): Promise<void>
}

/**
 * s3rver in-process on 127.0.0.1 with its own temp directory, behind a small HTTP front.
 * s3rver ignores If-None-Match / If-Match on PUT, so the front enforces them against the
 * stored object's ETag (answering 412 PreconditionFailed as S3 does) and serialises
 * conditional PUTs per key so two racing compare-and-swaps cannot both win. Every request is
 * counted by method.
 */
export async function startS3Server(options: {buckets: string[]}): Promise<S3TestServer> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 's3rver-'))
  const s3rver = new S3rver({
    silent: true,
    directory,
    configureBuckets: options.buckets.map((name) => ({name, configs: []})),
  })
  await s3rver.configureBuckets()
  const handle = s3rver.callback()

  const entries: RequestLogEntry[] = []
  const requestLog: RequestLog = {
    entries,
    get byMethod() {
      const out: Record<string, number> = {}
      for (const e of entries) out[e.method] = (out[e.method] ?? 0) + 1
      return out
    },
    count: (method, urlPart) => entries.filter((e) => e.method === method && (urlPart === undefined || e.url.includes(urlPart))).length,
    reset: () => {
      entries.length = 0
    },
  }

  const queues = new Map<string, Promise<void>>()
  const serialised = (id: string, task: () => Promise<void>): Promise<void> => {
    const prev = queues.get(id) ?? Promise.resolve()
    const next = prev.then(task, task)
    const tail = next.catch(() => undefined)
    queues.set(id, tail)
    void tail.then(() => {
      if (queues.get(id) === tail) queues.delete(id)
    })
    return next
  }

  const currentEtag = async (bucket: string, key: string): Promise<string | null> => {
    try {
      return (await s3rver.store.getMetadata(bucket, key)).etag
    } catch {
      return null
    }
  }

  const server = http.createServer((req, res) => {
    const entry: RequestLogEntry = {method: req.method ?? '', url: req.url ?? '', ...(req.headers.range ? {range: req.headers.range} : {})}
    entries.push(entry)
    const ifNoneMatch = req.headers['if-none-match']
    const ifMatch = req.headers['if-match']
    const target = objectOf(req.url ?? '/')
    if (req.method !== 'PUT' || (!ifNoneMatch && !ifMatch) || req.headers['x-amz-copy-source'] || !target) {
      handle(req, res)
      return
    }
    void serialised(`${target.bucket}/${target.key}`, async () => {
      const etag = await currentEtag(target.bucket, target.key)
      const ok = ifNoneMatch !== undefined
        ? !(ifNoneMatch === '*' ? etag !== null : etag !== null && sameEtag(etag, ifNoneMatch))
        : etag !== null && sameEtag(etag, ifMatch!)
      if (!ok) {
        entry.preconditionFailed = true
        req.resume()
        const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
          '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
          `<Condition>${ifNoneMatch === undefined ? 'If-Match' : 'If-None-Match'}</Condition></Error>`
        res.writeHead(412, {'content-type': 'application/xml', 'content-length': Buffer.byteLength(body)})
        res.end(body)
        return
      }
      // Hold the key until s3rver has stored the object and answered.
      await new Promise<void>((resolve) => {
        res.once('finish', resolve)
        res.once('close', resolve)
        handle(req, res)
      })
    })
  })
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', () => resolve()).once('error', reject))
  const {port} = server.address() as AddressInfo

  return {
    endpoint: `http://127.0.0.1:${port}`,
    requestLog,
    async stop() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      s3rver.logger.exceptions.unhandle()
      s3rver.logger.close()
      fs.rmSync(directory, {recursive: true, force: true})
    },
  }
}

/** Bucket and key of a path-style object URL, or null for bucket/service requests and multipart parts. */
function objectOf(url: string): {bucket: string; key: string} | null {
  const u = new URL(url, 'http://x')
  if (u.searchParams.has('uploadId') || u.searchParams.has('partNumber')) return null
  const [bucket, ...rest] = u.pathname.split('/').slice(1)
  if (!bucket || rest.length === 0 || rest.join('') === '') return null
  return {bucket: decodeURIComponent(bucket), key: rest.map(decodeURIComponent).join('/')}
}

function sameEtag(a: string, b: string): boolean {
  const norm = (s: string) => s.trim().replace(/^W\//, '').replace(/^"|"$/g, '')
  return b.split(',').some((one) => norm(one) === norm(a))
}
