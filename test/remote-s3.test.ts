import {expect} from 'chai'
import nock from 'nock'
import {type ChildProcess, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type {AddressInfo} from 'node:net'
import * as path from 'node:path'

import {hashBytes} from '../src/core/hash.js'
import {ancestors} from '../src/history/graph.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {promote} from '../src/ops/promote.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {readSyncLog} from '../src/ops/sync-log.js'
import {Workspace} from '../src/workspace/workspace.js'
import type {Backend} from '../src/remote/backend.js'
import {openBackend} from '../src/remote/registry.js'
import {RemoteStore, remoteKeys} from '../src/remote/object-store/remote-store.js'
import {cli} from './support/cli.js'
import {generationOf, setGeneration} from './support/edit.js'
import {DB_REL, dumpDatabase, makeProject, png, tmpDir, withDb} from './support/fixtures.js'
import {S3RVER_KEY, startS3Server, type S3TestServer} from './support/s3-server.js'
import {idsStoredAt, tamperStored, TREE_PACK_KEY} from './support/packed-remote.js'
import {runTransportConformance} from './support/transport-conformance.js'

// nock patches http on import; it is switched on only inside the suite that uses it.
nock.restore()

const author = {name: 'Tester', email: 't@example.com'}
/** s3rver checks the key id of a signature, not the secret: any secret works, so a recognisable one can be searched for. */
const SECRET = 'sEcReT-tilesync-e2e-Zq81vLw0-never-print'
const ACCOUNT = 'acc0unt1d5f00dfeedcafe0123456789'

let server: S3TestServer
const savedEnv: Record<string, string | undefined> = {}
const opened: Backend[] = []

before(async () => {
  server = await startS3Server({buckets: ['tiles', 'staging', 'production']})
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'TILESYNC_REMOTE_RETRIES', 'TILESYNC_JOBS']) savedEnv[k] = process.env[k]
  // The library reads credentials from the environment, as the CLI does.
  process.env.AWS_ACCESS_KEY_ID = S3RVER_KEY
  process.env.AWS_SECRET_ACCESS_KEY = SECRET
})

after(async () => {
  for (const b of opened) await b.close?.()
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
  }
  await server?.stop()
})

async function expectCode(p: Promise<unknown>, code: string): Promise<Error & {code?: string; hint?: string}> {
  try {
    await p
  } catch (error) {
    expect((error as {code?: string}).code, (error as Error).message).to.equal(code)
    return error as Error
  }
  expect.fail(`expected ${code}`)
}

const uniquePrefix = (): string => `t-${randomBytes(5).toString('hex')}`

/** A project with one commit pushed to a fresh s3:// remote (through `endpoint`, default the s3rver front). */
async function pushedProject(options: {bucket?: string; endpoint?: string} = {}): Promise<{a: Workspace; aDb: string; url: string; prefix: string}> {
  const {dir, db} = makeProject()
  await initRepository({dir})
  const a = await Workspace.open(dir)
  await commit(a, {message: 'first', author})
  const prefix = uniquePrefix()
  const url = `s3://${options.bucket ?? 'tiles'}/${prefix}`
  await addRemote(a.repo, 'origin', url, {endpoint: options.endpoint ?? server.endpoint})
  await push(a, {})
  return {a, aDb: db, url, prefix}
}

async function cloneOf(url: string, endpoint = server.endpoint): Promise<{ws: Workspace; db: string; dir: string}> {
  const dir = path.join(tmpDir('clone'), 'c')
  const r = await clone({url, dir, remote: {endpoint}})
  return {ws: await Workspace.open(dir), db: path.join(dir, r.database), dir}
}

/** Direct access to a remote, bypassing the workspace (to look at or tamper with what is stored). */
async function rawRemote(url: string): Promise<RemoteStore> {
  const backend = await openBackend({url, endpoint: server.endpoint})
  opened.push(backend)
  return new RemoteStore(backend, 'raw')
}

const puts = (part: string): string[] => server.requestLog.entries.filter((e) => e.method === 'PUT' && e.url.includes(part)).map((e) => e.url)

interface FrontEntry {
  method: string
  url: string
  status?: number
}

type Verdict = 'pass' | {status: number; code: string}

/**
 * An HTTP front between the client and the S3 test server that can answer instead of it
 * (an error for chosen requests) or hold requests back: lets a test fail the Nth upload, or
 * make two pushes reach the ref write together.
 */
async function startFront(decide: (r: FrontEntry) => Verdict | Promise<Verdict>): Promise<{endpoint: string; log: FrontEntry[]; settled: () => Promise<void>; stop: () => Promise<void>}> {
  const log: FrontEntry[] = []
  const inflight = new Set<Promise<void>>()
  const upstream = new URL(server.endpoint)
  const agent = new http.Agent({keepAlive: true})
  const front = http.createServer((req, res) => {
    const entry: FrontEntry = {method: req.method ?? '', url: req.url ?? ''}
    log.push(entry)
    void Promise.resolve(decide(entry)).then((verdict) => {
      if (verdict !== 'pass') {
        req.resume()
        const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${verdict.code}</Code><Message>${verdict.code}</Message></Error>`
        entry.status = verdict.status
        res.writeHead(verdict.status, {'content-type': 'application/xml', 'content-length': Buffer.byteLength(body)})
        res.end(body)
        return
      }
      let done!: () => void
      const finished = new Promise<void>((resolve) => (done = resolve))
      inflight.add(finished)
      res.once('close', () => {
        inflight.delete(finished)
        done()
      })
      const up = http.request({host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers, agent}, (r) => {
        entry.status = r.statusCode
        res.writeHead(r.statusCode ?? 502, r.headers)
        r.pipe(res)
      })
      up.on('error', () => res.destroy())
      req.pipe(up)
    })
  })
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
  return {
    endpoint: `http://127.0.0.1:${(front.address() as AddressInfo).port}`,
    log,
    settled: async () => {
      await Promise.all([...inflight])
    },
    stop: async () => {
      front.closeAllConnections()
      agent.destroy()
      await new Promise((r) => front.close(r))
    },
  }
}

describe('S3 remote (s3rver, behind a front that can refuse chosen uploads)', () => {
  let front: Awaited<ReturnType<typeof startFront>>
  let refuse: ((r: FrontEntry) => boolean) | null = null
  before(async () => {
    front = await startFront((r) => (refuse?.(r) ? {status: 403, code: 'AccessDenied'} : 'pass'))
  })
  after(async () => {
    await front?.stop()
  })

  runTransportConformance('s3', () => ({
    corruptCodes: ['OBJECT_CORRUPT'],
    async newRemote() {
      const prefix = uniquePrefix()
      const url = `s3://tiles/${prefix}`
      const base = `/tiles/${prefix}/`
      return {
        url,
        extra: {endpoint: front.endpoint},
        written: async () => idsStoredAt((await rawRemote(url)).backend, server.requestLog.entries.filter((e) => e.method === 'PUT' && e.url.startsWith(base)).map((e) => e.url.slice(base.length).split('?')[0])),
        resetWritten: async () => server.requestLog.reset(),
        isUploadOf: (entry, blob) => entry === hashBytes(blob),
        interrupt: async () => {
          // The images' pack lands; the trees' pack is refused.
          refuse = (r) => r.method === 'PUT' && r.url.startsWith(base) && TREE_PACK_KEY.test(r.url.slice(base.length).split('?')[0])
          return async () => {
            refuse = null
          }
        },
        tamper: async (blob, how) => tamperStored((await rawRemote(url)).backend, blob, how),
      }
    },
  }))
})

describe('S3 remote end to end (s3rver)', function () {
  this.timeout(120_000)

  it('push, clone: identical database; an incremental push of 3 tiles PUTs 3 blobs, a few trees and the commit, then the ref once', async () => {
    const {a, aDb, url, prefix} = await pushedProject()
    const b = await cloneOf(url)
    expect(dumpDatabase(b.db)).to.deep.equal(dumpDatabase(aDb))

    server.requestLog.reset()
    const again = await push(a, {})
    expect(again.upToDate).to.equal(true)
    expect(server.requestLog.count('PUT')).to.equal(0)

    setGeneration(aDb, 0, 0, 101)
    setGeneration(aDb, 1, 0, 102)
    setGeneration(aDb, -2, 1, 103)
    await commit(a, {message: 'three tiles', author})
    server.requestLog.reset()
    const r = await push(a, {})
    const keyOf = (u: string): string => u.slice(u.indexOf(`/${prefix}/`) + prefix.length + 2).split('?')[0]
    const packPuts = puts(`/${prefix}/packs/`).map(keyOf)
    // The images in a data pack, trees and the commit in a tree pack, each pack then its index.
    expect(packPuts.filter((k) => k.endsWith('.pack'))).to.have.length(2)
    expect(packPuts.filter((k) => k.endsWith('.idx'))).to.have.length(2)
    const stored = await idsStoredAt((await rawRemote(url)).backend, packPuts)
    expect(r.objects).to.equal(stored.length)
    for (const s of [101, 102, 103]) expect(stored.filter((id) => id === hashBytes(png(s))), `image ${s}`).to.have.length(1)
    // 3 blobs, then leaves (<= 3), level-1 nodes (<= 3), root, table, snapshot, commit.
    expect(stored.length - 3).to.be.within(6, 12)
    expect(puts(`/${prefix}/refs/heads/main`)).to.have.length(1)
    // Nothing else was written: no meta rewrite, no deletes, no loose object, no listing of objects.
    expect(server.requestLog.count('PUT')).to.equal(5)
    expect(puts(`/${prefix}/objects/`)).to.deep.equal([])
    expect(Object.keys(server.requestLog.byMethod).sort()).to.deep.equal(['GET', 'PUT'])
    expect(server.requestLog.count('GET', '/objects/')).to.equal(0)

    const c = await cloneOf(url)
    expect(dumpDatabase(c.db)).to.deep.equal(dumpDatabase(aDb))
  })

  it('two clones pushing at the same moment: the ref compare-and-swap lets exactly one win; after pull + push both commits are kept', async () => {
    // Hold each ref write until both pushes have reached it, so the race is decided by the
    // conditional PUT on the server and not by who started first.
    let armed = false
    let arrived = 0
    let release!: () => void
    const together = new Promise<void>((resolve) => (release = resolve))
    const front = await startFront(async (r): Promise<Verdict> => {
      if (armed && r.method === 'PUT' && r.url.includes('/refs/heads/main') && arrived < 2) {
        if (++arrived === 2) release()
        await Promise.race([together, new Promise((resolve) => setTimeout(resolve, 10_000))])
      }
      return 'pass'
    })
    try {
      const {url, prefix} = await pushedProject({endpoint: front.endpoint})
      const b = await cloneOf(url, front.endpoint)
      const c = await cloneOf(url, front.endpoint)
      setGeneration(b.db, 0, 0, 201)
      const bCommit = await commit(b.ws, {message: 'b edits 0,0', author})
      setGeneration(c.db, 1, 1, 301)
      const cCommit = await commit(c.ws, {message: 'c edits 1,1', author})

      server.requestLog.reset()
      armed = true
      const results = await Promise.allSettled([push(b.ws, {}), push(c.ws, {})])
      expect(arrived).to.equal(2)
      const won = results.filter((r) => r.status === 'fulfilled')
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      expect(won).to.have.length(1)
      expect(lost).to.have.length(1)
      expect(lost[0].reason.code).to.equal('REMOTE_MOVED')
      expect(lost[0].reason.message).to.include('pull first')
      const refWrites = server.requestLog.entries.filter((e) => e.method === 'PUT' && e.url.includes(`/${prefix}/refs/heads/main`))
      expect(refWrites).to.have.length(2)
      expect(refWrites.filter((e) => e.preconditionFailed)).to.have.length(1)

      const loser = results[0].status === 'rejected' ? b : c
      const p = await pull(loser.ws, {})
      expect(p.merge?.outcome).to.equal('merged')
      await push(loser.ws, {})

      const d = await cloneOf(url, front.endpoint)
      const history = await ancestors(d.ws.reader, (await d.ws.repo.refs.headCommit())!)
      expect(history.has(bCommit.id!)).to.equal(true)
      expect(history.has(cCommit.id!)).to.equal(true)
      expect(generationOf(d.db, 0, 0)).to.deep.equal(png(201))
      expect(generationOf(d.db, 1, 1)).to.deep.equal(png(301))
    } finally {
      await front.stop()
    }
  })

  it('a push interrupted mid-pack leaves the remote ref where it was; running it again sends only the packs that did not land', async () => {
    let failing = false
    let passed = 0
    const dataPack = /\/packs\/d-[0-9a-f]{64}\.pack(\?|$)/
    const front = await startFront(async (r): Promise<Verdict> => {
      if (!failing || r.method !== 'PUT' || !dataPack.test(r.url)) return 'pass'
      if (passed < 1) {
        passed++
        return 'pass'
      }
      // Answer the failure only once the uploads let through have finished.
      await front.settled()
      return {status: 500, code: 'InternalError'}
    })
    process.env.TILESYNC_REMOTE_RETRIES = '2'
    // Packs of about 4 KiB: eight 2 KB images make several data packs.
    process.env.TILESYNC_PACK_BYTES = '4096'
    try {
      const {a, aDb, url, prefix} = await pushedProject({endpoint: front.endpoint})
      const raw = await rawRemote(url)
      const before = await raw.readBranch('main')
      withDb(aDb, (d) => {
        for (let i = 0; i < 8; i++) d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(randomBytes(2000), (i % 4) - 2, Math.floor(i / 4))
      })
      const target = await commit(a, {message: 'eight tiles', author})
      const total = (await push(a, {dryRun: true})).objects
      expect(total).to.be.greaterThan(8)

      failing = true
      front.log.length = 0
      const err = await expectCode(push(a, {}), 'TRANSFER_FAILED')
      const keyOf = (u: string): string => u.slice(u.indexOf(`/${prefix}/`) + prefix.length + 2).split('?')[0]
      const landed = front.log.filter((e) => e.method === 'PUT' && e.url.includes('/packs/') && e.status === 200).map((e) => keyOf(e.url))
      const landedIds = await idsStoredAt(raw.backend, landed)
      expect(landedIds.length, 'one data pack landed').to.be.within(2, 7)
      expect(err.message).to.include(`stopped after ${landedIds.length} of ${total} objects`)
      expect(err.hint).to.include('run the same command again')
      expect(front.log.some((e) => e.url.includes('/refs/heads/') && e.method === 'PUT')).to.equal(false)
      expect((await raw.readBranch('main'))?.id).to.equal(before!.id)
      const stale = await cloneOf(url)
      expect(await stale.ws.repo.refs.headCommit()).to.equal(before!.id)

      failing = false
      front.log.length = 0
      const resumed = await push(a, {})
      const secondRun = front.log.filter((e) => e.method === 'PUT' && e.url.includes(`/${prefix}/packs/`)).map((e) => keyOf(e.url))
      expect(resumed.skipped).to.equal(landedIds.length)
      expect(resumed.objects).to.equal(total - landedIds.length)
      expect(secondRun.filter((k) => landed.includes(k)), 'no landed pack sent again').to.deep.equal([])
      expect((await idsStoredAt(raw.backend, secondRun)).filter((id) => landedIds.includes(id)), 'no landed object sent again').to.deep.equal([])
      expect(resumed.to).to.equal(target.id)
      const fresh = await cloneOf(url)
      expect(dumpDatabase(fresh.db)).to.deep.equal(dumpDatabase(aDb))
    } finally {
      delete process.env.TILESYNC_REMOTE_RETRIES
      delete process.env.TILESYNC_PACK_BYTES
      await front.stop()
    }
  })
})

describe('S3 push faults (nock in front of s3rver)', function () {
  this.timeout(60_000)
  const ACCESS_DENIED = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'

  before(() => {
    if (!nock.isActive()) nock.activate()
  })
  afterEach(() => {
    nock.cleanAll()
  })
  after(() => {
    nock.cleanAll()
    nock.restore()
  })

  it('a 500 on one object PUT is retried and the push succeeds; a 403 on the ref PUT is REMOTE_AUTH and the ref stays', async () => {
    const {a, aDb, url, prefix} = await pushedProject()
    setGeneration(aDb, 0, 0, 801)
    setGeneration(aDb, 1, 0, 802)
    await commit(a, {message: 'two tiles', author})
    // The data pack holding both images.
    const once = nock(server.endpoint, {allowUnmocked: true})
      .put((uri) => uri.startsWith(`/tiles/${prefix}/packs/d-`) && uri.split('?')[0].endsWith('.pack')).query(true)
      .reply(500, '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>', {'content-type': 'application/xml'})
    const r = await push(a, {})
    expect(once.isDone(), 'the 500 was served').to.equal(true)
    expect(r.to).to.equal(await a.repo.refs.headCommit())
    expect(dumpDatabase((await cloneOf(url)).db)).to.deep.equal(dumpDatabase(aDb))

    setGeneration(aDb, 2, 0, 803)
    const next = await commit(a, {message: 'one more', author})
    const before = await (await rawRemote(url)).readBranch('main')
    const denied = nock(server.endpoint, {allowUnmocked: true})
      .put(`/tiles/${prefix}/refs/heads/main`).query(true)
      .reply(403, ACCESS_DENIED, {'content-type': 'application/xml'})
    const err = await expectCode(push(a, {}), 'REMOTE_AUTH')
    expect(denied.isDone()).to.equal(true)
    expect(err.message).to.include('refs/heads/main').and.include('refused')
    expect(err.hint).to.include('AWS_ACCESS_KEY_ID')
    expect(JSON.stringify({m: err.message, h: err.hint})).to.not.include(SECRET)
    nock.cleanAll()
    const after = await (await rawRemote(url)).readBranch('main')
    expect(after?.id).to.equal(before!.id)
    // Every object was already sent: the retry only moves the ref.
    const retried = await push(a, {})
    expect(retried.objects).to.equal(0)
    expect(retried.skipped).to.be.greaterThan(0)
    expect(retried.to).to.equal(next.id)
  })
})

describe('promotion between two buckets (push --from)', function () {
  this.timeout(120_000)

  async function stagedProject(): Promise<{a: Workspace; aDb: string; staging: string; production: string}> {
    const {dir, db} = makeProject()
    await initRepository({dir})
    const a = await Workspace.open(dir)
    await commit(a, {message: 'first', author})
    const prefix = uniquePrefix()
    const staging = `s3://staging/${prefix}`
    const production = `s3://production/${prefix}`
    await addRemote(a.repo, 'staging', staging, {endpoint: server.endpoint})
    await addRemote(a.repo, 'production', production, {endpoint: server.endpoint})
    await push(a, {remote: 'staging'})
    return {a, aDb: db, staging, production}
  }

  /** Ids of every tile image in a database. */
  function blobIdsOf(db: string): Set<string> {
    const out = new Set<string>()
    for (const rows of Object.values(dumpDatabase(db))) {
      for (const row of rows as unknown[][]) {
        for (let i = 0; i + 1 < row.length; i += 2) if (row[i] === 'blob') out.add(hashBytes(Buffer.from(row[i + 1] as string, 'hex')))
      }
    }
    return out
  }

  const dataPackGets = (): number => server.requestLog.entries.filter((e) => e.method === 'GET' && e.url.includes('/staging/') && e.url.includes('/packs/d-') && e.url.split('?')[0].endsWith('.pack')).length
  const blobGets = (blobs: Set<string>): number => server.requestLog.entries.filter((e) => e.method === 'GET' && [...blobs].some((id) => e.url.includes(id.slice(2)))).length

  it('copies server-side with no blob passing through the client; the production clone equals the source; a second run copies nothing', async () => {
    const {a, aDb, production} = await stagedProject()
    const blobs = blobIdsOf(aDb)
    expect(blobs.size).to.be.greaterThan(20)

    const dry = await promote(a, {from: 'staging', to: 'production', branch: 'main', dryRun: true})
    expect(dry.dryRun).to.equal(true)
    expect(await (await rawRemote(production)).readBranch('main')).to.equal(null)

    server.requestLog.reset()
    const r = await promote(a, {from: 'staging', to: 'production', branch: 'main'})
    expect(r).to.include({from: 'staging', to: 'production', branch: 'main', commit: await a.repo.refs.headCommit(), copiedServerSide: true, upToDate: false, previous: null})
    expect(r.objects).to.equal(dry.objects)
    expect(r.bytes).to.equal(dry.bytes)
    expect(r.objects).to.be.greaterThan(blobs.size)
    expect(blobGets(blobs), 'blob GETs through the client').to.equal(0)
    expect(dataPackGets(), 'no data pack read through the client').to.equal(0)
    // Commits and trees were read (and hash-checked) from staging's tree pack, in a request or two.
    const treeGets = server.requestLog.entries.filter((e) => e.method === 'GET' && e.url.includes('/staging/') && e.url.includes('/packs/t-'))
    expect(treeGets.length).to.be.within(1, 2)
    // One copy per pack (its file, then its index), then the meta file and the ref.
    const copies = puts('/production/').filter((u) => u.includes('/packs/'))
    expect(copies.filter((u) => u.split('?')[0].endsWith('.pack'))).to.have.length(2)
    expect(copies.filter((u) => u.split('?')[0].endsWith('.idx'))).to.have.length(2)
    expect(puts('/production/')).to.have.length(copies.length + 2)
    expect(puts('/staging/')).to.have.length(0)

    const p = await cloneOf(production)
    expect(dumpDatabase(p.db)).to.deep.equal(dumpDatabase(aDb))

    server.requestLog.reset()
    const again = await promote(a, {from: 'staging', to: 'production', branch: 'main'})
    expect(again).to.include({upToDate: true, objects: 0, bytes: 0})
    expect(server.requestLog.count('PUT')).to.equal(0)

    // An increment copies only what production lacks, still without reading any blob.
    setGeneration(aDb, 0, 0, 901)
    setGeneration(aDb, 1, 1, 902)
    setGeneration(aDb, 2, 2, 903)
    await commit(a, {message: 'three tiles', author})
    const pushed = await push(a, {remote: 'staging'})
    server.requestLog.reset()
    const inc = await promote(a, {from: 'staging', to: 'production', branch: 'main'})
    expect(inc.objects).to.equal(pushed.objects)
    expect(inc.commits).to.equal(1)
    expect(blobGets(blobIdsOf(aDb))).to.equal(0)
    expect(dataPackGets()).to.equal(0)
    // The increment's data pack and tree pack, each with its index, then the ref.
    expect(puts('/production/')).to.have.length(5)
    await pull(p.ws, {})
    expect(dumpDatabase(p.db)).to.deep.equal(dumpDatabase(aDb))

    const logged = (await readSyncLog(a.repo, 'production')).filter((e) => e.op === 'promote')
    expect(logged.map((e) => e.result)).to.deep.equal(['dry-run', 'ok', 'ok', 'ok'])
    expect(logged[1]).to.include({from: null, to: r.commit, objects: r.objects, branch: 'main'})
  })

  it('promotes an explicit --commit, refuses when production is not an ancestor, and changes nothing when staging is missing an object', async () => {
    const {a, aDb, staging, production} = await stagedProject()
    const first = await a.repo.refs.headCommit()
    setGeneration(aDb, 0, 0, 911)
    await commit(a, {message: 'second', author})
    await push(a, {remote: 'staging'})

    const r = await promote(a, {from: 'staging', to: 'production', branch: 'main', commit: first!})
    expect(r.commit).to.equal(first)
    expect((await (await rawRemote(production)).readBranch('main'))?.id).to.equal(first)

    // Staging missing a blob of the next commit: refused before anything is written to production.
    setGeneration(aDb, 1, 1, 912)
    await commit(a, {message: 'third', author})
    await push(a, {remote: 'staging'})
    const stagingRaw = await rawRemote(staging)
    await stagingRaw.backend.delete(remoteKeys.object(hashBytes(png(912))))
    const productionRaw = await rawRemote(production)
    const keysBefore = await listKeys(productionRaw.backend)
    const missing = await expectCode(promote(a, {from: 'staging', to: 'production', branch: 'main'}), 'OBJECT_MISSING')
    expect(missing.message).to.include('incomplete on remote "staging"').and.include(hashBytes(png(912)))
    expect(await listKeys(productionRaw.backend)).to.deep.equal(keysBefore)
    expect((await productionRaw.readBranch('main'))?.id).to.equal(first)
    await stagingRaw.backend.put(remoteKeys.object(hashBytes(png(912))), png(912))

    // Production moved on its own: promoting over it is refused and production stays.
    const other = await cloneOf(production)
    setGeneration(other.db, 3, 3, 913)
    const hotfix = await commit(other.ws, {message: 'hotfix on production', author})
    await push(other.ws, {})
    const refused = await expectCode(promote(a, {from: 'staging', to: 'production', branch: 'main'}), 'REMOTE_MOVED')
    expect(refused.message).to.include('remote moved').and.include('not an ancestor')
    expect((await productionRaw.readBranch('main'))?.id).to.equal(hotfix.id)
  })

  it('falls back to download, hash check and upload between different kinds of remote', async () => {
    const {a, aDb} = await stagedProject()
    const dirRemote = path.join(tmpDir('promote-dir'), 'prod')
    await addRemote(a.repo, 'archive', dirRemote)
    const r = await promote(a, {from: 'staging', to: 'archive', branch: 'main'})
    expect(r.copiedServerSide).to.equal(false)
    expect(r.objects).to.be.greaterThan(20)
    const c = await cloneOf(dirRemote)
    expect(dumpDatabase(c.db)).to.deep.equal(dumpDatabase(aDb))
  })
})

async function listKeys(b: Backend): Promise<string[]> {
  const out: string[] = []
  for await (const k of b.list('')) out.push(k.key)
  return out.sort()
}

describe('R2 and S3 remotes through the CLI (subprocess)', function () {
  this.timeout(240_000)
  // The CLI runs synchronously (spawnSync), which would freeze an S3 server in this process:
  // this suite's server runs in a child process of its own, stopped when its stdin closes.
  let serverProcess: ChildProcess
  let endpoint: string

  before(async () => {
    const serverModule = new URL('./support/s3-server.js', import.meta.url).href
    const script = `import {startS3Server} from ${JSON.stringify(serverModule)}
const s = await startS3Server({buckets: ['tiles', 'staging', 'production']})
process.stdout.write(s.endpoint + '\\n')
process.stdin.on('end', () => s.stop().then(() => process.exit(0)))
process.stdin.resume()`
    serverProcess = spawn(process.execPath, ['--openssl-legacy-provider', '--input-type=module', '-e', script], {stdio: ['pipe', 'pipe', 'ignore']})
    endpoint = await new Promise<string>((resolve, reject) => {
      let out = ''
      serverProcess.stdout!.on('data', (c: Buffer) => {
        out += c.toString()
        if (out.includes('\n')) resolve(out.trim())
      })
      serverProcess.once('exit', (code) => reject(new Error(`S3 test server exited (${code})`)))
    })
  })

  after(async () => {
    if (serverProcess.exitCode !== null) return
    const exited = new Promise((resolve) => serverProcess.once('exit', resolve))
    serverProcess.stdin!.end()
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
    if (serverProcess.exitCode === null) serverProcess.kill()
  })

  /** Every file under `dir`, as bytes, for searching. */
  function filesUnder(dir: string): Array<{file: string; bytes: Buffer}> {
    return fs.readdirSync(dir, {recursive: true, withFileTypes: true}).filter((e) => e.isFile())
      .map((e) => path.join(e.parentPath, e.name)).map((file) => ({file, bytes: fs.readFileSync(file)}))
  }

  it('r2:// with .env and s3:// with --endpoint: remote add, push, verify, clone, fetch, pull, promote; no credential anywhere', () => {
    const outputs: string[] = []
    const run = (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}, expectCodeOf = 0): string => {
      // Only the variables named here reach the process: none of this test runner's AWS ones.
      const r = cli(cwd, args, {AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, R2_ACCOUNT_ID: undefined, R2_ACCESS_KEY_ID: undefined, R2_SECRET_ACCESS_KEY: undefined, ...env})
      outputs.push(r.stdout, r.stderr)
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).to.equal(expectCodeOf)
      return r.stdout
    }
    const {dir, db} = makeProject()
    fs.writeFileSync(path.join(dir, '.env'), `R2_ACCOUNT_ID=${ACCOUNT}\nR2_ACCESS_KEY_ID=${S3RVER_KEY}\nR2_SECRET_ACCESS_KEY=${SECRET}\n`)
    const awsEnv = {AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: SECRET}
    const prefix = uniquePrefix()
    run(dir, ['init'])
    run(dir, ['commit', '-m', 'first'])

    // R2: credentials from .env (read, never copied), endpoint given explicitly.
    run(dir, ['remote', 'add', 'origin', `r2://tiles/${prefix}/r2`, '--endpoint', endpoint])
    expect(run(dir, ['push', 'origin'])).to.match(/^Pushed 1 commit\(s\) to origin\/main/)
    const verify = run(dir, ['remote', 'verify', 'origin'])
    for (const check of ['list', 'read', 'write', 'delete']) expect(verify).to.match(new RegExp(`^  ${check} +ok `, 'm'))
    const copy = path.join(tmpDir('cli-clone'), 'copy')
    run(dir, ['clone', `r2://tiles/${prefix}/r2`, copy, '--endpoint', endpoint])
    expect(dumpDatabase(path.join(copy, DB_REL))).to.deep.equal(dumpDatabase(db))
    expect(fs.existsSync(path.join(copy, '.env')), '.env copied into the clone').to.equal(false)

    // S3: credentials from the environment; region defaults to auto.
    run(dir, ['remote', 'add', 'staging', `s3://staging/${prefix}`, '--endpoint', endpoint])
    run(dir, ['remote', 'add', 'production', `s3://production/${prefix}`, '--endpoint', endpoint])
    run(dir, ['push', 'staging'], awsEnv)
    setGeneration(db, 0, 0, 1001)
    run(dir, ['commit', '-m', 'edit'])
    run(dir, ['push', 'staging'], awsEnv)
    run(dir, ['push', 'origin'])
    const promoted = JSON.parse(run(dir, ['push', 'production', '--from', 'staging', 'main', '--json'], awsEnv)) as {objects: number; copiedServerSide: boolean; upToDate: boolean}
    expect(promoted).to.include({copiedServerSide: true, upToDate: false})
    expect(run(dir, ['push', 'production', '--from', 'staging'], awsEnv)).to.match(/^Everything up to date .*0 objects copied/)
    const prodCopy = path.join(tmpDir('cli-clone'), 'prod')
    run(dir, ['clone', `s3://production/${prefix}`, prodCopy, '--endpoint', endpoint], awsEnv)
    expect(dumpDatabase(path.join(prodCopy, DB_REL))).to.deep.equal(dumpDatabase(db))

    // The first clone catches up from R2 (its cwd has no .env: the environment supplies the keys).
    const r2Env = {R2_ACCESS_KEY_ID: S3RVER_KEY, R2_SECRET_ACCESS_KEY: SECRET}
    expect(run(copy, ['fetch'], r2Env)).to.include('origin/main: ')
    run(copy, ['pull'], r2Env)
    expect(dumpDatabase(path.join(copy, DB_REL))).to.deep.equal(dumpDatabase(db))

    // Failures name the variable to fix, never its value.
    const denied = cli(dir, ['push', 'origin'], {R2_ACCESS_KEY_ID: 'WRONGKEYID'})
    outputs.push(denied.stdout, denied.stderr)
    expect(denied.code).to.equal(1)
    expect(denied.stderr.trim().split('\n')).to.have.length(1)
    expect(denied.stderr).to.include('R2_ACCESS_KEY_ID')
    const badVerify = cli(dir, ['remote', 'verify'], {R2_ACCESS_KEY_ID: 'WRONGKEYID', AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined})
    outputs.push(badVerify.stdout, badVerify.stderr)
    expect(badVerify.code).to.equal(1)
    expect(badVerify.stdout).to.match(/^origin \(r2:\/\/tiles\/.*\): FAILED$/m)
    expect(badVerify.stdout).to.match(/^ {2}write +FAILED +REMOTE_AUTH: .*R2_ACCESS_KEY_ID/m)
    expect(badVerify.stdout).to.match(/^staging \(s3:\/\/staging\/.*\): FAILED$/m)
    expect(badVerify.stdout).to.include('AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY')
    const json = JSON.parse(run(dir, ['remote', 'verify', '--json'], {...awsEnv, ...r2Env})) as {ok: boolean; remotes: Array<{name: string; ok: boolean; checks: Array<{check: string; ok: boolean}>}>}
    expect(json.ok).to.equal(true)
    expect(json.remotes.map((r) => [r.name, r.ok, r.checks.map((c) => c.check)])).to.deep.equal([
      ['origin', true, ['list', 'read', 'write', 'delete']],
      ['production', true, ['list', 'read', 'write', 'delete']],
      ['staging', true, ['list', 'read', 'write', 'delete']],
    ])

    // No credential value in stdout / stderr, in any file under .tilesync/ (config, refs,
    // reflogs, sync log, objects) of the project or of the clones.
    const files = [dir, copy, prodCopy].flatMap((d) => filesUnder(path.join(d, '.tilesync')))
    expect(files.some((f) => f.file.endsWith('sync-log.jsonl'))).to.equal(true)
    expect(files.some((f) => f.file.endsWith('config.json'))).to.equal(true)
    for (const secret of [SECRET, ACCOUNT, S3RVER_KEY]) {
      for (const f of files) expect(f.bytes.includes(secret), `${secret} in ${f.file}`).to.equal(false)
      for (const out of outputs) expect(out, 'command output').to.not.include(secret)
    }
    const config = JSON.parse(fs.readFileSync(path.join(dir, '.tilesync', 'config.json'), 'utf8')) as {remotes: Record<string, Record<string, string>>}
    expect(config.remotes.origin).to.deep.equal({url: `r2://tiles/${prefix}/r2`, endpoint: endpoint})
    const log = fs.readFileSync(path.join(dir, '.tilesync', 'sync-log.jsonl'), 'utf8')
    expect(log).to.include('"op":"promote"')
  })
})
