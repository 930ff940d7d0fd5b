import {expect} from 'chai'
import nock from 'nock'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type {AddressInfo} from 'node:net'
import {inspect} from 'node:util'
import * as os from 'node:os'
import * as path from 'node:path'

import {isTilesyncError} from '../src/core/errors.js'
import {hashBytes} from '../src/core/hash.js'
import {type Backend, TransientError, type Versioned} from '../src/remote/backend.js'
import {RemoteStore, remoteKeys} from '../src/remote/object-store/remote-store.js'
import {RetryingBackend} from '../src/remote/retrying-backend.js'
import {openS3Backend} from '../src/remote/s3/open-s3-backend.js'
import {parseRetryAfter, S3Backend} from '../src/remote/s3/s3-backend.js'
import {resolveS3Settings} from '../src/remote/s3/s3-credentials.js'

// nock patches http on import; keep it off except inside the suites that use it.
nock.restore()

const ENDPOINT = 'http://127.0.0.1:9'
const KEY_ID = 'AKIDTILESYNCFAKE0001'
const SECRET = 'zz-fake-secret-Qx7vP3mN9kL2-do-not-leak'
const ACCOUNT = 'f00dfeedf00dfeedf00dfeedf00dfeed'
const emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'no-dotenv-'))
const seenErrors: unknown[] = []

const LOC = {kind: 's3' as const, flavour: 'r2' as const, bucket: 'tiles', prefix: 'p'}

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {R2_ACCESS_KEY_ID: KEY_ID, R2_SECRET_ACCESS_KEY: SECRET, TILESYNC_REMOTE_RETRIES: '4', ...extra}
}

function open(endpoint = ENDPOINT, extra: Record<string, string> = {}): Promise<Backend> {
  return openS3Backend(LOC, {url: 'r2://tiles/p', endpoint}, {env: env(extra), cwd: emptyDir})
}

async function failure(p: Promise<unknown>): Promise<Error & {code?: string; hint?: string; data?: unknown}> {
  try {
    await p
  } catch (error) {
    seenErrors.push(error)
    return error as Error & {code?: string}
  }
  throw new Error('expected a failure')
}

/** Every text an error carries: message, hint, data, and the same down its cause chain. */
function everything(error: unknown): string {
  const parts: string[] = []
  let e = error as {message?: string; hint?: string; data?: unknown; cause?: unknown; stack?: string} | undefined
  for (let depth = 0; e && depth < 10; depth++) {
    parts.push(String(e.message), String(e.hint), JSON.stringify(e.data ?? null), String(e.stack), JSON.stringify(e))
    e = e.cause as typeof e
  }
  return parts.join('\n')
}

function xmlError(code: string, message = code): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`
}

const OBJ = /\/tiles\/p\/objects\//

after(() => {
  // Not one error produced in this file may carry the secret.
  expect(seenErrors.length).to.be.greaterThan(5)
  for (const e of seenErrors) expect(everything(e)).to.not.include(SECRET)
})

describe('S3 faults (nock)', () => {
  before(() => {
    if (!nock.isActive()) nock.activate()
  })
  afterEach(() => {
    const pending = nock.pendingMocks()
    nock.cleanAll()
    expect(pending, 'unused interceptors').to.deep.equal([])
  })
  after(() => {
    nock.cleanAll()
    nock.restore()
  })

  it('retries a 500 and succeeds', async () => {
    nock(ENDPOINT).put(OBJ).query(true).reply(500, xmlError('InternalError'), {'content-type': 'application/xml'})
      .put(OBJ).query(true).reply(200, '', {ETag: '"abc"'})
    const b = await open()
    await b.put('objects/aa/bb', Buffer.from('tile'))
  })

  it('retries 503 SlowDown on a read and returns the bytes', async () => {
    nock(ENDPOINT).get(OBJ).query(true).reply(503, xmlError('SlowDown', 'Please reduce your request rate.'), {'content-type': 'application/xml'})
      .get(OBJ).query(true).reply(200, Buffer.from('tile bytes'), {ETag: '"e1"'})
    const b = await open()
    expect((await b.get('objects/aa/bb'))?.toString()).to.equal('tile bytes')
  })

  it('waits as long as a 429 Retry-After asks', async () => {
    nock(ENDPOINT).put(OBJ).query(true).reply(429, xmlError('TooManyRequests'), {'content-type': 'application/xml', 'Retry-After': '1'})
      .put(OBJ).query(true).reply(200, '', {ETag: '"abc"'})
    const b = await open()
    const start = Date.now()
    await b.put('objects/aa/bb', Buffer.from('tile'))
    expect(Date.now() - start).to.be.at.least(900)
  })

  it('parses Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('1')).to.equal(1000)
    expect(parseRetryAfter('0.5')).to.equal(500)
    const now = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT')
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:28:03 GMT', now)).to.equal(3000)
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:27:00 GMT', now)).to.equal(0)
    expect(parseRetryAfter('soon')).to.equal(undefined)
    expect(parseRetryAfter(undefined)).to.equal(undefined)
  })

  it('retries a connection reset', async () => {
    nock(ENDPOINT).put(OBJ).query(true).replyWithError(Object.assign(new Error('socket hang up'), {code: 'ECONNRESET'}))
      .put(OBJ).query(true).reply(200, '', {ETag: '"abc"'})
    const b = await open()
    await b.put('objects/aa/bb', Buffer.from('tile'))
  })

  it('gives up after the configured tries with TRANSFER_FAILED', async () => {
    nock(ENDPOINT).put(OBJ).query(true).times(2).reply(502, 'bad gateway')
    const b = await open(ENDPOINT, {TILESYNC_REMOTE_RETRIES: '2'})
    const err = await failure(b.put('objects/aa/bb', Buffer.from('tile')))
    expect(err.code).to.equal('TRANSFER_FAILED')
    expect(err.message).to.include('after 2 tries').and.include('502')
  })

  /** The bucket holds no packs: an object is then read by its own key (the layout before packs). */
  const noPacks = (): void => {
    nock(ENDPOINT).get('/tiles/').query((q) => q['list-type'] === '2').reply(200, '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>tiles</Name><Prefix>p/packs/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>', {'content-type': 'application/xml'})
  }

  it('refuses a tampered download with OBJECT_CORRUPT', async () => {
    const bytes = Buffer.from('a real tile, honestly')
    const id = hashBytes(bytes)
    nock(ENDPOINT).get(`/tiles/p/${remoteKeys.object(id)}`).query(true).reply(200, Buffer.from('a real tile, h0nestly'))
    noPacks()
    const store = new RemoteStore(await open(), 'origin')
    const err = await failure(store.getObject(id))
    expect(err.code).to.equal('OBJECT_CORRUPT')
  })

  it('refuses a truncated download with OBJECT_CORRUPT', async () => {
    const bytes = Buffer.alloc(4096, 7)
    const id = hashBytes(bytes)
    nock(ENDPOINT).get(`/tiles/p/${remoteKeys.object(id)}`).query(true).reply(200, bytes.subarray(0, 1000))
    noPacks()
    const store = new RemoteStore(await open(), 'origin')
    const err = await failure(store.getObject(id))
    expect(err.code).to.equal('OBJECT_CORRUPT')
  })

  it('reads a missing object as null', async () => {
    nock(ENDPOINT).get(OBJ).query(true).reply(404, xmlError('NoSuchKey'), {'content-type': 'application/xml'})
    const b = await open()
    expect(await b.get('objects/aa/bb')).to.equal(null)
  })

  it('turns 403 AccessDenied into REMOTE_AUTH naming the permission and variables, never the secret', async () => {
    nock(ENDPOINT).put(OBJ).query(true).reply(403, xmlError('AccessDenied', 'Access Denied'), {'content-type': 'application/xml'})
    const b = await open()
    const err = await failure(b.put('objects/aa/bb', Buffer.from('tile')))
    expect(err.code).to.equal('REMOTE_AUTH')
    expect(err.message).to.include('s3:PutObject').and.include('R2_ACCESS_KEY_ID').and.include('"tiles"')
    expect((err as {hint?: string}).hint).to.include('Object Read & Write')
    expect(everything(err)).to.not.include(SECRET)
  })

  it('explains InvalidAccessKeyId and SignatureDoesNotMatch by variable name', async () => {
    nock(ENDPOINT).get(OBJ).query(true).reply(403, xmlError('InvalidAccessKeyId'), {'content-type': 'application/xml'})
      .get(OBJ).query(true).reply(403, xmlError('SignatureDoesNotMatch'), {'content-type': 'application/xml'})
    const b = await open()
    const first = await failure(b.get('objects/aa/bb'))
    expect(first.code).to.equal('REMOTE_AUTH')
    expect(first.message).to.include('R2_ACCESS_KEY_ID')
    const second = await failure(b.get('objects/aa/bb'))
    expect(second.code).to.equal('REMOTE_AUTH')
    expect(second.message).to.include('R2_SECRET_ACCESS_KEY')
  })

  it('maps 412 to a lost compare-and-swap', async () => {
    nock(ENDPOINT).put('/tiles/p/refs/heads/main').query(true).reply(412, xmlError('PreconditionFailed'), {'content-type': 'application/xml'})
    const b = await open()
    expect(await b.putIfMatch('refs/heads/main', Buffer.from('x\n'), '"old"')).to.equal(false)
  })

  it('re-reads and retries after 409 ConditionalRequestConflict', async () => {
    nock(ENDPOINT)
      .put('/tiles/p/refs/heads/main').query(true).reply(409, xmlError('ConditionalRequestConflict'), {'content-type': 'application/xml'})
      .get('/tiles/p/refs/heads/main').query(true).reply(200, 'old\n', {ETag: '"old"'})
      .put('/tiles/p/refs/heads/main').query(true).reply(200, '', {ETag: '"new"'})
    const b = await open()
    expect(await b.putIfMatch('refs/heads/main', Buffer.from('new\n'), '"old"')).to.equal(true)
  })

  it('a 409 after which the key has moved is a lost swap', async () => {
    nock(ENDPOINT)
      .put('/tiles/p/refs/heads/main').query(true).reply(409, xmlError('ConditionalRequestConflict'), {'content-type': 'application/xml'})
      .get('/tiles/p/refs/heads/main').query(true).reply(200, 'other\n', {ETag: '"other"'})
    const b = await open()
    expect(await b.putIfMatch('refs/heads/main', Buffer.from('new\n'), '"old"')).to.equal(false)
  })

  it('names the bucket when it does not exist', async () => {
    nock(ENDPOINT).get(OBJ).query(true).reply(404, xmlError('NoSuchBucket', 'The specified bucket does not exist'), {'content-type': 'application/xml'})
    const b = await open()
    const err = await failure(b.get('objects/aa/bb'))
    expect(err.code).to.equal('REMOTE_UNREACHABLE')
    expect(err.message).to.include('bucket "tiles"')
  })
})

describe('S3 faults on a real socket', () => {
  const servers: http.Server[] = []
  async function serve(handler: http.RequestListener): Promise<string> {
    const server = http.createServer(handler)
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }
  after(async () => {
    for (const s of servers) {
      s.closeAllConnections()
      await new Promise((r) => s.close(r))
    }
  })

  it('retries an upload whose connection is reset half-way', async () => {
    let puts = 0
    let stored: Buffer | null = null
    const endpoint = await serve((req, res) => {
      puts++
      if (puts === 1) {
        let got = 0
        req.on('data', (c: Buffer) => {
          got += c.length
          if (got > 10_000) req.socket.destroy()
        })
        return
      }
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        stored = Buffer.concat(chunks)
        res.writeHead(200, {ETag: '"ok"'})
        res.end()
      })
    })
    const b = await open(endpoint)
    const bytes = Buffer.alloc(300_000, 9)
    await b.put('objects/aa/bb', bytes)
    expect(puts).to.equal(2)
    expect(stored!.equals(bytes)).to.equal(true)
  })

  it('retries a download cut short before its Content-Length', async () => {
    const bytes = Buffer.alloc(50_000, 3)
    let gets = 0
    const endpoint = await serve((req, res) => {
      gets++
      res.writeHead(200, {'content-length': bytes.length, ETag: '"e"'})
      if (gets === 1) {
        res.write(bytes.subarray(0, 20_000), () => req.socket.destroy())
        return
      }
      res.end(bytes)
    })
    const b = await open(endpoint)
    expect((await b.get('objects/aa/bb'))!.equals(bytes)).to.equal(true)
    expect(gets).to.equal(2)
  })

  it('gives up on a server that never answers within the configured timeout', async () => {
    const endpoint = await serve(() => {
      // Accepts the request and says nothing.
    })
    const settings = resolveS3Settings(LOC, {url: 'r2://tiles/p', endpoint}, {env: env(), cwd: emptyDir})
    const raw = new S3Backend({flavour: 'r2', bucket: 'tiles', prefix: 'p', settings, timeoutMs: 300})
    let start = Date.now()
    const err = await failure(raw.get('objects/aa/bb'))
    expect(err).to.be.instanceOf(TransientError)
    expect(err.message).to.include('within 300 ms')
    expect(Date.now() - start).to.be.lessThan(2000)
    await raw.close()

    const wrapped = await open(endpoint, {TILESYNC_REMOTE_TIMEOUT_MS: '300', TILESYNC_REMOTE_RETRIES: '2'})
    start = Date.now()
    const final = await failure(wrapped.put('objects/aa/bb', Buffer.from('x')))
    expect(final.code).to.equal('TRANSFER_FAILED')
    expect(final.message).to.include('TILESYNC_REMOTE_TIMEOUT_MS')
    expect(Date.now() - start).to.be.lessThan(4000)
    await wrapped.close?.()
  })

  it('reports a refused connection as REMOTE_UNREACHABLE without retrying', async () => {
    const endpoint = await serve(() => undefined)
    const port = new URL(endpoint).port
    const s = servers.pop()!
    await new Promise((r) => s.close(r))
    const b = await open(`http://127.0.0.1:${port}`)
    const err = await failure(b.get('x'))
    expect(err.code).to.equal('REMOTE_UNREACHABLE')
  })
})

describe('S3/R2 credentials', () => {
  it('names every missing R2 variable', () => {
    let err: unknown
    try {
      resolveS3Settings(LOC, {url: 'r2://tiles/p'}, {env: {}, cwd: emptyDir})
    } catch (error) {
      err = error
    }
    seenErrors.push(err)
    expect(isTilesyncError(err, 'REMOTE_AUTH')).to.equal(true)
    expect((err as Error).message).to.include('R2_ACCOUNT_ID').and.include('R2_ACCESS_KEY_ID').and.include('R2_SECRET_ACCESS_KEY')
  })

  it('names only what is missing, never a value that is set', async () => {
    const err = await failure(openS3Backend(LOC, {url: 'r2://tiles/p'}, {env: {R2_SECRET_ACCESS_KEY: SECRET, R2_ACCOUNT_ID: ACCOUNT}, cwd: emptyDir}))
    expect(err.code).to.equal('REMOTE_AUTH')
    expect(err.message).to.include('R2_ACCESS_KEY_ID').and.not.include('R2_SECRET_ACCESS_KEY').and.not.include('R2_ACCOUNT_ID')
    expect((err as {data?: {missing?: string[]}}).data?.missing).to.deep.equal(['R2_ACCESS_KEY_ID'])
  })

  it('needs no account id when the remote has an endpoint; names AWS variables for s3://', () => {
    const r2 = resolveS3Settings(LOC, {url: 'r2://tiles/p', endpoint: 'http://127.0.0.1:1'}, {env: env(), cwd: emptyDir})
    expect(r2.endpoint).to.equal('http://127.0.0.1:1')
    expect(r2.region).to.equal('auto')
    let err: unknown
    try {
      resolveS3Settings({...LOC, flavour: 's3'}, {url: 's3://tiles/p', endpoint: 'http://127.0.0.1:1'}, {env: {AWS_ACCESS_KEY_ID: KEY_ID}, cwd: emptyDir})
    } catch (error) {
      err = error
    }
    seenErrors.push(err)
    expect((err as {code?: string}).code).to.equal('REMOTE_AUTH')
    expect((err as Error).message).to.include('AWS_SECRET_ACCESS_KEY').and.not.include('AWS_ACCESS_KEY_ID')
  })

  it('builds the R2 endpoint from the account id, reads .env, and lets the process environment win', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'dotenv-'))
    fs.writeFileSync(path.join(cwd, '.env'), `# local secrets\nR2_ACCOUNT_ID=${ACCOUNT}\nR2_ACCESS_KEY_ID=from-file\nR2_SECRET_ACCESS_KEY='${SECRET}'\n`)
    const s = resolveS3Settings(LOC, {url: 'r2://tiles/p'}, {env: {R2_ACCESS_KEY_ID: 'from-process'}, cwd})
    expect(s.endpoint).to.equal(`https://${ACCOUNT}.r2.cloudflarestorage.com`)
    expect(s.credentials.accessKeyId).to.equal('from-process')
    expect(s.credentials.secretAccessKey).to.equal(SECRET)
    expect(s.vars).to.deep.equal({accessKeyId: 'R2_ACCESS_KEY_ID', secretAccessKey: 'R2_SECRET_ACCESS_KEY'})
  })

  it('uses AWS_REGION for s3:// and refuses an s3:// remote with neither endpoint nor region', async () => {
    const s = resolveS3Settings({...LOC, flavour: 's3'}, {url: 's3://tiles/p', endpoint: 'https://minio.local:9000/'}, {env: {AWS_ACCESS_KEY_ID: KEY_ID, AWS_SECRET_ACCESS_KEY: SECRET, AWS_REGION: 'eu-west-1'}, cwd: emptyDir})
    expect(s.region).to.equal('eu-west-1')
    expect(s.endpoint).to.equal('https://minio.local:9000')
    const err = await failure(openS3Backend({...LOC, flavour: 's3'}, {url: 's3://tiles/p'}, {env: {AWS_ACCESS_KEY_ID: KEY_ID, AWS_SECRET_ACCESS_KEY: SECRET}, cwd: emptyDir}))
    expect(err.code).to.equal('BAD_CONFIG')
  })

  it('S3 locations never show credentials', async () => {
    const b = await open()
    expect(b.location).to.equal('r2://tiles/p')
    expect(inspect(b, {depth: 8, showHidden: true})).to.not.include(SECRET)
    expect(inspect((b as RetryingBackend).inner, {depth: 8})).to.not.include(SECRET)
  })
})

/** A backend that fails on cue, to test the retry decorator on its own. */
class Flaky implements Backend {
  readonly location = 'flaky://'
  failures = 0
  calls = 0
  stored = new Map<string, Buffer>()
  landThenFail = false
  constructor(private readonly error: () => Error) {}
  private trip(): void {
    this.calls++
    if (this.failures > 0) {
      this.failures--
      throw this.error()
    }
  }
  async get(key: string) {
    this.trip()
    return this.stored.get(key) ?? null
  }
  async getVersioned(key: string): Promise<Versioned | null> {
    const bytes = this.stored.get(key)
    return bytes ? {bytes, etag: hashBytes(bytes)} : null
  }
  async put(key: string, bytes: Buffer) {
    this.trip()
    this.stored.set(key, bytes)
  }
  async putIfMatch(key: string, bytes: Buffer, expected: string | null) {
    const now = this.stored.get(key)
    if ((now ? hashBytes(now) : null) !== expected) return false
    if (this.landThenFail) {
      this.landThenFail = false
      this.stored.set(key, bytes)
      throw new TransientError('answer lost')
    }
    this.stored.set(key, bytes)
    return true
  }
  async *list(prefix: string) {
    for (const [key, v] of this.stored) {
      if (!key.startsWith(prefix)) continue
      this.trip()
      yield {key, size: v.length, lastModified: 1}
    }
  }
  async delete(key: string) {
    this.stored.delete(key)
  }
}

describe('RetryingBackend', () => {
  const waits: number[] = []
  const sleep = async (ms: number) => {
    waits.push(ms)
  }
  beforeEach(() => {
    waits.length = 0
  })

  it('retries transient failures with growing, jittered waits', async () => {
    const inner = new Flaky(() => new TransientError('blip'))
    inner.failures = 3
    const b = new RetryingBackend(inner, {attempts: 5, baseDelayMs: 100, sleep})
    await b.put('k', Buffer.from('v'))
    expect(inner.calls).to.equal(4)
    expect(waits).to.have.length(3)
    expect(waits[0]).to.be.within(50, 100)
    expect(waits[1]).to.be.within(100, 200)
    expect(waits[2]).to.be.within(200, 400)
  })

  it('honours Retry-After, capped', async () => {
    const inner = new Flaky(() => new TransientError('slow down', 120_000))
    inner.failures = 1
    const b = new RetryingBackend(inner, {attempts: 3, sleep, maxRetryAfterMs: 30_000})
    await b.get('k')
    expect(waits).to.deep.equal([30_000])
  })

  it('passes other errors through at once', async () => {
    const inner = new Flaky(() => new Error('not transient'))
    inner.failures = 1
    const b = new RetryingBackend(inner, {attempts: 5, sleep})
    const err = await failure(b.get('k'))
    expect(err.message).to.equal('not transient')
    expect(inner.calls).to.equal(1)
  })

  it('ends with TRANSFER_FAILED after N attempts, from TILESYNC_REMOTE_RETRIES by default', async () => {
    const saved = process.env.TILESYNC_REMOTE_RETRIES
    process.env.TILESYNC_REMOTE_RETRIES = '3'
    try {
      const inner = new Flaky(() => new TransientError('503 from server'))
      inner.failures = 10
      const b = new RetryingBackend(inner, {sleep})
      const err = await failure(b.put('objects/ab/cd', Buffer.from('x')))
      expect(err.code).to.equal('TRANSFER_FAILED')
      expect(err.message).to.include('objects/ab/cd').and.include('after 3 tries').and.include('503 from server')
      expect(inner.calls).to.equal(3)
    } finally {
      if (saved === undefined) delete process.env.TILESYNC_REMOTE_RETRIES
      else process.env.TILESYNC_REMOTE_RETRIES = saved
    }
  })

  it('a compare-and-swap whose answer was lost but which landed counts as won', async () => {
    const inner = new Flaky(() => new TransientError('x'))
    inner.landThenFail = true
    const b = new RetryingBackend(inner, {attempts: 3, sleep})
    expect(await b.putIfMatch('refs/heads/main', Buffer.from('new\n'), null)).to.equal(true)
    expect(inner.stored.get('refs/heads/main')?.toString()).to.equal('new\n')
  })

  it('resumes an interrupted listing without repeating keys', async () => {
    const inner = new Flaky(() => new TransientError('reset'))
    for (const k of ['a/1', 'a/2', 'a/3']) inner.stored.set(k, Buffer.from(k))
    const b = new RetryingBackend(inner, {attempts: 3, sleep})
    const got: string[] = []
    let n = 0
    for await (const k of b.list('a/')) {
      got.push(k.key)
      if (++n === 2) inner.failures = 1
    }
    expect(got.sort()).to.deep.equal(['a/1', 'a/2', 'a/3'])
  })
})
