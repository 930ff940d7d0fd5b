import {expect} from 'chai'
import {type ChildProcess, spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {addRemote} from '../src/ops/remotes.js'
import {readSyncLog} from '../src/ops/sync-log.js'
import {addSyncApiRoutes} from '../src/api/sync-api-routes.js'
import {resolveApiToken} from '../src/api/api-token.js'
import {MemoryBackend} from '../src/remote/memory-backend.js'
import {decodeCommit} from '../src/snapshot/model.js'
import {type RunningServer, startServer} from '../src/viewer/server.js'
import {Workspace} from '../src/workspace/workspace.js'
import {BIN, cli} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {makeProject, tmpDir} from './support/fixtures.js'
import {memoryBackends, registerMemoryRemotes} from './support/memory-remote.js'

const TOKEN = 'api-test-token-0f6c2a9be41d77c3-never-print'
const author = {name: 'Api Test', email: 'api@example.com'}

interface Answer {
  status: number
  body: Record<string, any>
  text: string
}

async function call(base: string, method: 'GET' | 'POST', route: string, options: {token?: string | null; body?: unknown; header?: string} = {}): Promise<Answer> {
  const headers: Record<string, string> = {}
  const token = options.token === undefined ? TOKEN : options.token
  if (options.header !== undefined) headers.authorization = options.header
  else if (token !== null) headers.authorization = `Bearer ${token}`
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(new URL(route, base), {method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body)})
  const text = await res.text()
  return {status: res.status, body: text ? JSON.parse(text) : {}, text}
}

/** Every file under `dir` with its bytes, for "nothing changed" (the sync log aside). */
function snapshot(dir: string, skip: string[] = []): Record<string, string> {
  const out: Record<string, string> = {}
  if (!fs.existsSync(dir)) return out
  for (const e of fs.readdirSync(dir, {recursive: true, withFileTypes: true})) {
    if (!e.isFile()) continue
    const rel = path.relative(dir, path.join(e.parentPath, e.name))
    if (skip.some((s) => rel === s || rel.startsWith(`${s}/`))) continue
    out[rel] = fs.readFileSync(path.join(dir, rel)).toString('base64')
  }
  return out
}

/** A committed project with a directory remote `origin` (not pushed yet) and one tile changed since. */
async function project(): Promise<{ws: Workspace; dir: string; db: string; remoteDir: string}> {
  const {dir, db} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  const remoteDir = path.join(tmpDir('api-remote'), 'r')
  await addRemote(ws.repo, 'origin', remoteDir)
  setGeneration(db, 0, 0, 4242)
  return {ws, dir, db, remoteDir}
}

async function serve(ws: Workspace): Promise<RunningServer> {
  return startServer(ws, {port: 0, warm: false, routes: (router) => {
    addSyncApiRoutes(router, {root: ws.repo.root, token: TOKEN})
  }})
}

/**
 * A memory remote whose object writes stop after `free` of them until released: a push that
 * is still running when the test looks at it.
 */
class GatedBackend extends MemoryBackend {
  private waiting: Array<() => void> = []
  private open = false
  puts = 0
  constructor(location: string, private readonly free: number) {
    super(location)
  }

  /** Gate object reads instead of writes (a pull). */
  gateReads = false

  /** Keys that carry objects: loose ones, and packs (not their indexes). */
  private static carries = (key: string): boolean => key.startsWith('objects/') || (key.startsWith('packs/') && key.endsWith('.pack'))

  override async put(key: string, bytes: Buffer): Promise<void> {
    if (!this.gateReads && GatedBackend.carries(key) && ++this.puts > this.free && !this.open) await new Promise<void>((resolve) => this.waiting.push(resolve))
    return super.put(key, bytes)
  }

  /** Ranged reads of a pack (how a fetch reads packed images) are gated like whole reads. */
  override async getRange(key: string, start: number, length: number): Promise<Buffer | null> {
    const bytes = await super.getRange(key, start, length)
    if (this.gateReads && /^packs\/d-.*\.pack$/.test(key) && ++this.puts > this.free && !this.open) await new Promise<void>((resolve) => this.waiting.push(resolve))
    return bytes
  }

  /** Reads of tile images (PNG bytes, or whole packs) are gated; commits, trees and pack indexes pass, so a fetch can plan. */
  override async get(key: string): Promise<Buffer | null> {
    const bytes = await super.get(key)
    const image = bytes !== null && (/^packs\/d-.*\.pack$/.test(key) || bytes.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47])))
    if (this.gateReads && image && ++this.puts > this.free && !this.open) await new Promise<void>((resolve) => this.waiting.push(resolve))
    return bytes
  }

  release(): void {
    this.open = true
    for (const w of this.waiting.splice(0)) w()
  }
}

describe('sync API (serve --api)', function () {
  // Small packs, so that a push or a pull of this small project moves many of them and its
  // progress can be seen part way.
  const packBytes = process.env.TILESYNC_PACK_BYTES
  before(() => {
    process.env.TILESYNC_PACK_BYTES = '4096'
  })
  after(() => {
    if (packBytes === undefined) delete process.env.TILESYNC_PACK_BYTES
    else process.env.TILESYNC_PACK_BYTES = packBytes
  })
  this.timeout(120_000)
  const servers: RunningServer[] = []
  before(() => registerMemoryRemotes())
  after(async () => {
    for (const s of servers) await s.close()
  })

  it('answers 401 without the token, with a wrong one or another scheme, and does nothing', async () => {
    const {ws, dir, remoteDir} = await project()
    const server = await serve(ws)
    servers.push(server)
    const before = snapshot(path.join(dir, '.tilesync'))
    const head = await ws.repo.refs.read('refs/heads/main')
    const attempts: Array<{token?: string | null; header?: string}> = [
      {token: null}, {token: 'wrong-token-of-some-length'}, {token: `${TOKEN}x`}, {token: TOKEN.slice(0, -1)},
      {header: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`}, {header: TOKEN}, {header: 'Bearer'},
    ]
    for (const a of attempts) {
      for (const [method, route, body] of [['POST', '/api/commit', {message: 'sneaky'}], ['POST', '/api/push', {remote: 'origin'}], ['POST', '/api/pull', {remote: 'origin'}], ['GET', '/api/status'], ['GET', '/api/sync-log']] as const) {
        const r = await call(server.url, method, route, {...a, body})
        expect(r.status, `${method} ${route} ${JSON.stringify(a)}`).to.equal(401)
        expect(r.body.error.code).to.equal('UNAUTHORIZED')
        expect(r.text).to.not.include(TOKEN)
      }
    }
    expect(await ws.repo.refs.read('refs/heads/main'), 'no commit').to.equal(head)
    expect(fs.existsSync(remoteDir), 'no push').to.equal(false)
    expect(snapshot(path.join(dir, '.tilesync')), 'nothing written, not even the sync log').to.deep.equal(before)
    // The viewer stays as it was: open, read-only, its own /api/log.
    const page = await fetch(new URL('/api/log', server.url))
    expect(page.status).to.equal(200)
    expect(JSON.stringify(await page.json())).to.include('first')
  })

  it('commit and push through the API give what the CLI gives', async () => {
    const a = await project()
    const b = await project()
    const server = await serve(a.ws)
    servers.push(server)

    const viaApi = await call(server.url, 'POST', '/api/commit', {body: {message: 'batch 7', author: 'Api Test <api@example.com>'}})
    expect(viaApi.status, viaApi.text).to.equal(200)
    const viaCli = cli(b.dir, ['commit', '-m', 'batch 7', '--author', 'Api Test <api@example.com>', '--json'])
    expect(viaCli.code, viaCli.stderr).to.equal(0)
    const cliCommit = JSON.parse(viaCli.stdout)
    expect(Object.keys(viaApi.body).sort()).to.deep.equal(Object.keys(cliCommit).sort())
    const same = (c: Record<string, unknown>) => ({...c, id: undefined, parent: undefined})
    expect(same(viaApi.body)).to.deep.equal(same(cliCommit))
    expect(viaApi.body.summary).to.deep.equal({tilesAdded: 0, tilesModified: 1, tilesDeleted: 0, rowsChanged: 1})
    const tree = async (ws: Workspace, id: string) => decodeCommit(await ws.repo.store.get(id)).tree
    expect(await tree(a.ws, viaApi.body.id)).to.equal(await tree(b.ws, cliCommit.id))
    expect(await a.ws.repo.refs.read('refs/heads/main')).to.equal(viaApi.body.id)

    const pushApi = await call(server.url, 'POST', '/api/push', {body: {remote: 'origin', branch: 'main'}})
    expect(pushApi.status, pushApi.text).to.equal(200)
    const pushCli = cli(b.dir, ['push', 'origin', 'main', '--json'])
    expect(pushCli.code, pushCli.stderr).to.equal(0)
    const cliPush = JSON.parse(pushCli.stdout)
    const counts = (p: Record<string, unknown>) => ({...p, from: undefined, to: undefined})
    expect(counts(pushApi.body)).to.deep.equal(counts(cliPush))
    expect(pushApi.body).to.include({remote: 'origin', branch: 'main', to: viaApi.body.id, upToDate: false, dryRun: false})
    expect(fs.readFileSync(path.join(a.remoteDir, 'refs', 'heads', 'main'), 'utf8').trim()).to.equal(viaApi.body.id)
    expect(Object.keys(snapshot(a.remoteDir)).length).to.equal(Object.keys(snapshot(b.remoteDir)).length)
    expect(await a.ws.repo.refs.read('refs/remotes/origin/main')).to.equal(viaApi.body.id)

    // The sync log, through the API and as the CLI keeps it.
    const log = await call(server.url, 'GET', '/api/sync-log?remote=origin')
    expect(log.status).to.equal(200)
    expect(log.body.entries).to.deep.equal(await readSyncLog(a.ws.repo, 'origin'))
    expect(log.body.entries.at(-1)).to.include({op: 'push', remote: 'origin', branch: 'main', to: viaApi.body.id, result: 'ok'})

    // Errors carry the CLI's codes.
    const again = await call(server.url, 'POST', '/api/push', {body: {remote: 'nowhere'}})
    expect(again.status).to.equal(404)
    expect(again.body.error.code).to.equal('REMOTE_UNKNOWN')
    const empty = await call(server.url, 'POST', '/api/commit', {body: {message: ' '}})
    expect(empty.status).to.equal(400)
    expect(empty.body.error.code).to.equal('BAD_ARGUMENT')

    const st = await call(server.url, 'GET', '/api/status')
    expect(st.status).to.equal(200)
    expect(st.body.working).to.include({branch: 'main', head: viaApi.body.id, clean: true})
    expect(st.body.running).to.equal(null)
    // The last write: the push to an unknown remote (the empty message was refused before it ran).
    expect(st.body.last).to.include({op: 'push', result: 'error'})
    expect(st.body.last.error.code).to.equal('REMOTE_UNKNOWN')
  })

  it('dry runs write nothing; a misspelled field is refused rather than ignored', async () => {
    const {ws, dir, remoteDir} = await project()
    await commit(ws, {message: 'second', author})
    const server = await serve(ws)
    servers.push(server)
    const before = snapshot(path.join(dir, '.tilesync'), ['sync-log.jsonl'])

    const typo = await call(server.url, 'POST', '/api/push', {body: {remote: 'origin', dryRun: true}})
    expect(typo.status).to.equal(400)
    expect(typo.body.error).to.include({code: 'BAD_ARGUMENT'})
    expect(typo.body.error.message).to.include('unknown field "dryRun"')
    expect(fs.existsSync(remoteDir)).to.equal(false)

    const dry = await call(server.url, 'POST', '/api/push', {body: {remote: 'origin', dry_run: true}})
    expect(dry.status, dry.text).to.equal(200)
    expect(dry.body).to.include({dryRun: true, commits: 2})
    expect(dry.body.objects).to.be.greaterThan(0)
    expect(fs.existsSync(remoteDir), 'nothing sent').to.equal(false)
    expect(snapshot(path.join(dir, '.tilesync'), ['sync-log.jsonl'])).to.deep.equal(before)

    // The real push, then a dry pull from a second repository that lacks it.
    expect((await call(server.url, 'POST', '/api/push', {body: {remote: 'origin'}})).status).to.equal(200)
    const other = await project()
    await addRemote(other.ws.repo, 'shared', remoteDir)
    const server2 = await serve(other.ws)
    servers.push(server2)
    const otherBefore = snapshot(path.join(other.dir, '.tilesync'), ['sync-log.jsonl'])
    const dbBefore = fs.readFileSync(other.db)
    const pullDry = await call(server2.url, 'POST', '/api/pull', {body: {remote: 'shared', branch: 'main', dry_run: true}})
    expect(pullDry.status, pullDry.text).to.equal(200)
    expect(pullDry.body).to.include({dryRun: true})
    expect(snapshot(path.join(other.dir, '.tilesync'), ['sync-log.jsonl'])).to.deep.equal(otherBefore)
    expect(fs.readFileSync(other.db).equals(dbBefore)).to.equal(true)
    expect((await readSyncLog(other.ws.repo)).at(-1)).to.include({op: 'pull', result: 'dry-run'})
  })

  it('one write at a time: of two concurrent pushes one gets 409 naming the other; status shows the push progressing', async () => {
    const {ws} = await project()
    await commit(ws, {message: 'second', author})
    const gated = new GatedBackend('memory://gated', 3)
    memoryBackends.set('gated', gated)
    await addRemote(ws.repo, 'slow', 'memory://gated')
    const server = await serve(ws)
    servers.push(server)

    const first = call(server.url, 'POST', '/api/push', {body: {remote: 'slow'}})
    let status: Answer | undefined
    for (let i = 0; i < 500; i++) {
      status = await call(server.url, 'GET', '/api/status')
      if (status.body.running?.progress?.done > 0) break
      await new Promise((r) => setTimeout(r, 10))
    }
    expect(status!.body.running).to.include({op: 'push'})
    expect(status!.body.running.params).to.include({remote: 'slow', dry_run: false})
    // Three packs (or loose objects) land, then the remote holds the rest.
    const progress = status!.body.running.progress
    expect(progress.done).to.be.greaterThan(0)
    expect(progress.done).to.be.lessThan(progress.total)

    const [second, third] = await Promise.all([
      call(server.url, 'POST', '/api/push', {body: {remote: 'slow'}}),
      call(server.url, 'POST', '/api/commit', {body: {message: 'while pushing'}}),
    ])
    for (const r of [second, third]) {
      expect(r.status, r.text).to.equal(409)
      expect(r.body.error.code).to.equal('BUSY')
      expect(r.body.error.message).to.include('a push is running')
      expect(r.body.error.data.running).to.include({op: 'push'})
    }
    gated.release()
    const done = await first
    expect(done.status, done.text).to.equal(200)
    expect(done.body.objects).to.equal(progress.total)
    expect((await call(server.url, 'GET', '/api/status')).body.running).to.equal(null)

    // Two at once from idle: exactly one runs.
    const {ws: ws2} = await project()
    await commit(ws2, {message: 'second', author})
    const gated2 = new GatedBackend('memory://gated2', 0)
    memoryBackends.set('gated2', gated2)
    await addRemote(ws2.repo, 'slow', 'memory://gated2')
    const server2 = await serve(ws2)
    servers.push(server2)
    const both = Promise.all([call(server2.url, 'POST', '/api/push', {body: {remote: 'slow'}}), call(server2.url, 'POST', '/api/push', {body: {remote: 'slow'}})])
    await new Promise((r) => setTimeout(r, 200))
    gated2.release()
    const statuses = (await both).map((r) => r.status).sort()
    expect(statuses).to.deep.equal([200, 409])
  })

  it('a long pull reports its progress at /api/status too', async () => {
    const a = await project()
    const open = new GatedBackend('memory://pulled', 0)
    open.release()
    memoryBackends.set('pulled', open)
    await addRemote(a.ws.repo, 'shared', 'memory://pulled')
    const {push} = await import('../src/ops/push.js')
    const {clone} = await import('../src/ops/clone.js')
    await commit(a.ws, {message: 'second', author})
    await push(a.ws, {remote: 'shared'})
    const bDir = path.join(tmpDir('api-pull'), 'b')
    await clone({url: 'memory://pulled', dir: bDir, remote: {}})
    const b = await Workspace.open(bDir)
    for (let i = 0; i < 20; i++) setGeneration(a.db, (i % 6) - 3, Math.floor(i / 6) - 2, 7000 + i)
    await commit(a.ws, {message: 'twenty tiles', author})
    await push(a.ws, {remote: 'shared'})
    // From here on the remote serves one read of tile images (a loose image, a data pack or a range of one), then holds the rest until released.
    const slow = new GatedBackend('memory://pulled', 1)
    slow.gateReads = true
    for await (const k of open.list('')) await slow.put(k.key, (await open.get(k.key))!)
    memoryBackends.set('pulled', slow)
    const server = await serve(b)
    servers.push(server)
    const pulling = call(server.url, 'POST', '/api/pull', {body: {remote: 'origin', branch: 'main'}})
    let status: Answer | undefined
    for (let i = 0; i < 500; i++) {
      status = await call(server.url, 'GET', '/api/status')
      if (status.body.running?.progress?.done > 0) break
      await new Promise((r) => setTimeout(r, 10))
    }
    expect(status!.body.running).to.include({op: 'pull'})
    expect(status!.body.working, 'the database is the pull\'s while it runs').to.equal(null)
    const progress = status!.body.running.progress
    expect(progress.done).to.be.greaterThan(0)
    expect(progress.done).to.be.lessThan(progress.total)
    slow.release()
    const done = await pulling
    expect(done.status, done.text).to.equal(200)
    expect(done.body.to).to.equal(await a.ws.repo.refs.read('refs/heads/main'))
  })

  it('without a token the API does not start; a token file readable by others is refused', async () => {
    const {dir} = await project()
    const noToken = cli(dir, ['serve', '--api', '--port', '0', '--no-build'], {TILESYNC_API_TOKEN: ''})
    expect(noToken.code).to.equal(1)
    expect(noToken.stderr).to.include('needs a token').and.include('TILESYNC_API_TOKEN')
    const weak = cli(dir, ['serve', '--api', '--port', '0', '--no-build'], {TILESYNC_API_TOKEN: 'short'})
    expect(weak.code).to.equal(1)
    expect(weak.stderr).to.include('too weak').and.not.include('short')
    const file = path.join(tmpDir('token'), 'token')
    fs.writeFileSync(file, `${TOKEN}\n`, {mode: 0o644})
    fs.chmodSync(file, 0o644)
    await resolveApiToken({tokenFile: file}).then(() => expect.fail('accepted'), (e: {code: string; message: string}) => {
      expect(e.code).to.equal('BAD_ARGUMENT')
      expect(e.message).to.include('can be read by other users').and.not.include(TOKEN)
    })
    fs.chmodSync(file, 0o600)
    expect(await resolveApiToken({tokenFile: file, env: {}})).to.equal(TOKEN)
  })

  it('the CLI server: the token appears in no output, answer, file or log', async () => {
    const {dir, remoteDir} = await project()
    const child: ChildProcess = spawn(process.execPath, [BIN, 'serve', '--api', '--port', '0', '--no-build'], {
      cwd: dir, env: {...process.env, TILESYNC_API_TOKEN: TOKEN, TILESYNC_AUTHOR_NAME: 'Cli Test', TILESYNC_AUTHOR_EMAIL: 'cli@example.com'}, stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d) => (stdout += d))
    child.stderr!.on('data', (d) => (stderr += d))
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()))
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setInterval(() => {
          const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout)
          if (m && stdout.includes('Sync API')) {
            clearInterval(timer)
            resolve(m[1])
          }
        }, 20)
        child.on('close', (code) => {
          clearInterval(timer)
          reject(new Error(`serve exited ${code}: ${stdout}${stderr}`))
        })
      })
      const answers: string[] = []
      const record = async (p: Promise<Answer>): Promise<Answer> => {
        const r = await p
        answers.push(r.text)
        return r
      }
      expect((await record(call(url, 'POST', '/api/commit', {token: 'not-the-token-at-all', body: {message: 'x'}}))).status).to.equal(401)
      expect((await record(call(url, 'POST', '/api/commit', {body: {message: 'from the pipeline'}}))).status).to.equal(200)
      expect((await record(call(url, 'POST', '/api/push', {body: {remote: 'origin'}}))).status).to.equal(200)
      expect((await record(call(url, 'POST', '/api/pull', {body: {remote: 'origin'}}))).status).to.equal(200)
      expect((await record(call(url, 'GET', '/api/status'))).body.working).to.include({clean: true})
      const log = await record(call(url, 'GET', '/api/sync-log'))
      expect(log.body.entries.map((e: {op: string}) => e.op)).to.deep.equal(['push', 'pull'])
      expect(fs.existsSync(path.join(remoteDir, 'refs', 'heads', 'main'))).to.equal(true)
      for (const a of answers) expect(a).to.not.include(TOKEN)
    } finally {
      child.kill('SIGTERM')
      await closed
    }
    expect(stdout + stderr).to.not.include(TOKEN)
    expect(stdout).to.include('TILESYNC_API_TOKEN')
    for (const where of [path.join(dir, '.tilesync'), remoteDir]) {
      for (const [file, b64] of Object.entries(snapshot(where))) {
        expect(Buffer.from(b64, 'base64').includes(TOKEN), `${where}/${file}`).to.equal(false)
      }
    }
  })
})
