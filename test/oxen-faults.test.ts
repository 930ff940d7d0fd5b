import {expect} from 'chai'
import nock from 'nock'
import {inspect} from 'node:util'
import {gunzipSync} from 'node:zlib'

import {isTilesyncError, type TilesyncError} from '../src/core/errors.js'
import {OxenClient, type OxenClientOptions} from '../src/remote/oxen/oxen-client.js'
import type {OxenRetryEvent} from '../src/remote/oxen/oxen-http.js'

// nock patches http and fetch on import; keep it off except inside this suite.
nock.restore()

const ORIGIN = 'http://127.0.0.1:19'
const TOKEN = 'oxtok-FAKE-9d2c4e71-never-print'
const REPO = '/api/repos/tiles/nyc'
const seenErrors: unknown[] = []

function client(extra: Partial<OxenClientOptions> = {}): OxenClient {
  return new OxenClient({namespace: 'tiles', repo: 'nyc', token: TOKEN, host: ORIGIN, backoffMs: 5, ...extra})
}

async function failure(p: Promise<unknown>): Promise<TilesyncError> {
  try {
    await p
  } catch (err) {
    seenErrors.push(err)
    if (isTilesyncError(err)) return err
    throw err
  }
  throw new Error('expected a TilesyncError')
}

const ok = (fields: Record<string, unknown>) => ({status: 'success', status_message: 'resource_found', ...fields})

/** nock hands binary bodies over as hex. */
function bodyBytes(body: unknown): Buffer {
  const s = typeof body === 'string' ? body : JSON.stringify(body)
  return /^[0-9a-f]+$/i.test(s) && s.length % 2 === 0 ? Buffer.from(s, 'hex') : Buffer.from(s)
}

/** The part filenames and gunzipped contents of a multipart body. */
function parts(body: Buffer): Array<{filename: string; data: string}> {
  const boundary = body.subarray(0, body.indexOf('\r\n')).toString()
  const out: Array<{filename: string; data: string}> = []
  let pos = 0
  for (;;) {
    const start = body.indexOf(boundary, pos)
    const headEnd = body.indexOf('\r\n\r\n', start)
    if (start < 0 || headEnd < 0) return out
    const head = body.subarray(start, headEnd).toString()
    const end = body.indexOf(`\r\n${boundary}`, headEnd)
    out.push({filename: /filename="([^"]*)"/.exec(head)![1], data: gunzipSync(body.subarray(headEnd + 4, end)).toString()})
    pos = end + 2
  }
}

after(() => {
  // Not one error produced in this file may carry the token, in any field or cause,
  expect(seenErrors.length).to.be.greaterThan(8)
  // Nor any piece of it: a message cut short must not keep the token's start.
  for (const e of seenErrors) expect(inspect(e, {depth: 8, showHidden: true})).to.not.include(TOKEN.slice(0, 10))
})

describe('oxen client faults (nock)', () => {
  before(() => {
    if (!nock.isActive()) nock.activate()
    nock.disableNetConnect()
  })
  afterEach(() => {
    const pending = nock.pendingMocks()
    nock.cleanAll()
    expect(pending, 'unused interceptors').to.deep.equal([])
  })
  after(() => {
    nock.cleanAll()
    nock.enableNetConnect()
    nock.restore()
  })

  it('waits for Retry-After on 429, then succeeds', async () => {
    nock(ORIGIN).get(`${REPO}/branches`).reply(429, ok({}), {'Retry-After': '1'})
      .get(`${REPO}/branches`).reply(200, ok({branches: [{name: 'main', commit_id: 'abc'}]}))
    const events: OxenRetryEvent[] = []
    const started = Date.now()
    const branches = await client({onRetry: (e) => events.push(e)}).listBranches()
    expect(Date.now() - started).to.be.at.least(950)
    expect(branches).to.deep.equal([{name: 'main', commit_id: 'abc'}])
    expect(events).to.have.length(1)
    expect(events[0]).to.include({waitMs: 1000, attempt: 1})
  })

  it('gives up on a hub that stays busy with one clear line', async () => {
    nock(ORIGIN).get(`${REPO}/branches`).times(3).reply(429, ok({}), {'Retry-After': '0'})
    const err = await failure(client({busyRetries: 2}).listBranches())
    expect(err.code).to.equal('REMOTE_UNREACHABLE')
    expect(err.message).to.contain('429')
  })

  it('retries a 500 and succeeds; a 400 is never retried', async () => {
    nock(ORIGIN).get(`${REPO}/branches/main`).reply(500, ok({})).get(`${REPO}/branches/main`).reply(200, ok({branch: {name: 'main', commit_id: 'c1'}}))
    expect(await client().getBranch('main')).to.deep.equal({name: 'main', commit_id: 'c1'})

    nock(ORIGIN).get(`${REPO}/branches`).once().reply(400, {status: 'error', status_message: 'bad_request', status_description: 'nope'})
    const err = await failure(client().listBranches())
    expect(err.code).to.equal('REMOTE_PROTOCOL')
    expect(err.message).to.contain('HTTP 400').and.contain('nope')
  })

  it('stops after 3 retries of a 5xx', async () => {
    nock(ORIGIN).get(`${REPO}/branches`).times(4).reply(503, ok({}))
    const err = await failure(client().listBranches())
    expect(err.code).to.equal('REMOTE_UNREACHABLE')
    expect(err.message).to.contain('after 4 tries').and.contain('503')
  })

  it('explains 401 and 403 without the token', async () => {
    for (const status of [401, 403]) {
      nock(ORIGIN).get(`${REPO}/branches`).reply(status, {status: 'error', status_message: 'unauthenticated'})
      const err = await failure(client().listBranches())
      expect(err.code).to.equal('REMOTE_AUTH')
      expect(err.oneLine).to.contain(`HTTP ${status}`).and.contain('OXEN_API_TOKEN').and.contain('oxen config --auth')
      expect(err.oneLine.split('\n')).to.have.length(1)
    }
  })

  it('names the status of an HTML 502 from a proxy', async () => {
    nock(ORIGIN).get(`${REPO}/dir/main`).query(true).times(4)
      .reply(502, '<html><body><h1>502 Bad Gateway</h1></body></html>', {'content-type': 'text/html'})
    const err = await failure(client().listDir('main'))
    expect(err.code).to.equal('REMOTE_UNREACHABLE')
    expect(err.message).to.contain('HTTP 502').and.contain('HTML page instead of JSON')
    expect(err.message).to.not.contain('<html>')
  })

  it('treats a 200 that is not JSON as a protocol error', async () => {
    nock(ORIGIN).get(`${REPO}/branches`).reply(200, '<html>login</html>', {'content-type': 'text/html'})
    const err = await failure(client().listBranches())
    expect(err.code).to.equal('REMOTE_PROTOCOL')
    expect(err.message).to.contain('HTTP 200').and.contain('HTML')
  })

  it('reads JSON with status "error" on HTTP 200 as a failure, after keep-alive newlines', async () => {
    nock(ORIGIN).post(`${REPO}/workspaces/ws1/merge/main`)
      .reply(200, `\n\n\n${JSON.stringify({status: 'error', status_message: 'internal_error', status_description: 'merge failed: disk quota'})}`)
    const err = await failure(client().commitWorkspace('ws1', 'main', {message: 'm', author: 'a', email: 'e@x'}))
    expect(err.code).to.equal('REMOTE_PROTOCOL')
    expect(err.message).to.contain('merge failed: disk quota')

    nock(ORIGIN).post(`${REPO}/workspaces/ws1/merge/main`)
      .reply(200, `\n\n${JSON.stringify(ok({commit: {id: 'c9', parent_ids: [], message: 'm', author: 'a', email: 'e@x', timestamp: 't'}}))}`)
    expect((await client().commitWorkspace('ws1', 'main', {message: 'm', author: 'a', email: 'e@x'})).id).to.equal('c9')
  })

  it('re-uploads the files missing from a partial `paths` answer', async () => {
    const sent: string[][] = []
    nock(ORIGIN).post(`${REPO}/workspaces/ws1/files/renders`)
      .reply(200, function (_uri, body) {
        const ps = parts(bodyBytes(body))
        sent.push(ps.map((p) => p.filename))
        return ok({paths: ['renders/a.png', 'c.png']}) // both forms: from the root and from the dir
      })
      .post(`${REPO}/workspaces/ws1/files/renders`)
      .reply(200, function (_uri, body) {
        const ps = parts(bodyBytes(body))
        sent.push(ps.map((p) => p.filename))
        expect(ps[0].data).to.equal('bee')
        return ok({paths: ['renders/b.png']})
      })
    const files = [{path: 'a.png', bytes: Buffer.from('ay')}, {path: 'b.png', bytes: Buffer.from('bee')}, {path: 'c.png', bytes: Buffer.from('sea')}]
    const result = await client().uploadFiles('ws1', 'renders', files)
    expect(sent).to.deep.equal([['a.png', 'b.png', 'c.png'], ['b.png']])
    expect(result).to.deep.equal({files: 3, bytes: 8, requests: 2})
  })

  it('fails the upload clearly when a file is never staged', async () => {
    nock(ORIGIN).post(`${REPO}/workspaces/ws1/files/`).times(2).reply(200, ok({paths: ['a.png']}))
    const err = await failure(client({uploadTries: 2}).uploadFiles('ws1', '', [{path: 'a.png', bytes: Buffer.from('a')}, {path: 'b.png', bytes: Buffer.from('b')}]))
    expect(err.code).to.equal('TRANSFER_FAILED')
    expect(err.message).to.contain('1 of 2 files after 2 tries').and.contain('b.png')
  })

  it('halves a batch the hub finds too large (413), and reports a single file that still is', async () => {
    nock(ORIGIN).post(`${REPO}/workspaces/ws1/files/`).reply(413, {status: 'error', status_message: 'too_large'})
      .post(`${REPO}/workspaces/ws1/files/`).reply(200, ok({paths: ['a.png']}))
      .post(`${REPO}/workspaces/ws1/files/`).reply(200, ok({paths: ['b.png']}))
    const two = [{path: 'a.png', bytes: Buffer.from('a')}, {path: 'b.png', bytes: Buffer.from('b')}]
    expect(await client().uploadFiles('ws1', '', two)).to.include({files: 2, requests: 3})

    nock(ORIGIN).post(`${REPO}/workspaces/ws1/files/`).reply(413, {status: 'error', status_message: 'too_large'})
    const err = await failure(client().uploadFiles('ws1', '', [two[0]]))
    expect(err.code).to.equal('TRANSFER_FAILED')
    expect(err.message).to.contain('413').and.contain('too large')
  })

  it('maps 409 to "pull first", 422 to nothing to commit, and never retries a commit after a 500', async () => {
    const body = {message: 'm', author: 'a', email: 'e@x'}
    nock(ORIGIN).post(`${REPO}/workspaces/ws1/merge/main`).reply(409, {status: 'error', status_message: 'workspace is behind'})
    const behind = await failure(client().commitWorkspace('ws1', 'main', body))
    expect(behind.code).to.equal('REMOTE_MOVED')
    expect(behind.message).to.contain('workspace is behind: pull first')

    nock(ORIGIN).post(`${REPO}/workspaces/ws1/merge/main`).reply(422, {status: 'error', status_message: 'NothingToCommit("no changes")'})
    expect((await failure(client().commitWorkspace('ws1', 'main', body))).code).to.equal('NOTHING_TO_COMMIT')

    nock(ORIGIN).post(`${REPO}/workspaces/ws1/merge/main`).once().reply(500, ok({}))
    const lost = await failure(client().commitWorkspace('ws1', 'main', body))
    expect(lost.code).to.equal('REMOTE_UNREACHABLE')
    expect(lost.oneLine).to.contain('may or may not have been applied')
  })

  it('says "no such repository" for a 404 on a missing repository', async () => {
    nock(ORIGIN).get(`${REPO}/file/main/README.md`).reply(404, {status: 'error', status_message: 'resource_not_found'})
      .get(REPO).reply(404, {status: 'error', status_message: 'resource_not_found'})
    const err = await failure(client().downloadFile('main', 'README.md'))
    expect(err.code).to.equal('REMOTE_UNKNOWN')
    expect(err.message).to.equal('no such repository tiles/nyc on 127.0.0.1:19')
  })

  it('explains 426 and retries a dropped connection without leaking the token', async () => {
    nock(ORIGIN).get(`${REPO}/branches`).reply(426, {status: 'error', status_message: 'update_required'})
    const gate = await failure(client().listBranches())
    expect(gate.code).to.equal('REMOTE_PROTOCOL')
    expect(gate.oneLine).to.contain('426').and.contain('update')

    nock(ORIGIN).get(`${REPO}/branches`).replyWithError({code: 'ECONNRESET', message: `socket hang up (${TOKEN})`})
      .get(`${REPO}/branches`).reply(200, ok({branches: []}))
    expect(await client().listBranches()).to.deep.equal([])

    // No matching interceptor: nock's own error quotes the request, Authorization header included.
    nock(ORIGIN).get('/elsewhere').reply(200)
    const down = await failure(client({retries: 1}).listBranches())
    expect(down.code).to.equal('REMOTE_UNREACHABLE')
    expect(down.message).to.contain('Bearer ***')
    nock.cleanAll()
  })

  it('sends a bearer token and a non-Oxen user agent', async () => {
    nock(ORIGIN, {reqheaders: {authorization: `Bearer ${TOKEN}`, 'user-agent': (v: string) => /^tilesync\/\d/.test(v)}})
      .get(`${REPO}/versions/abc/metadata`).reply(200, ok({version: {hash: 'abc', size: 3}}))
      .get(`${REPO}/versions/def/metadata`).reply(404, {status: 'error', status_message: 'resource_not_found'})
    const c = client()
    expect(await c.versionExists('abc')).to.equal(true)
    expect(await c.versionExists('def')).to.equal(false)
  })
})
