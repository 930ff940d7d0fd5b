import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import nock from 'nock'

import {switchBranch} from '../src/ops/branches.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {deleteRemoteBranch} from '../src/ops/delete-remote-branch.js'
import {destroyRemote} from '../src/ops/destroy-remote.js'
import {fetchRemote} from '../src/ops/fetch.js'
import {initRepository} from '../src/ops/init.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {readSyncLog} from '../src/ops/sync-log.js'
import type {Backend} from '../src/remote/backend.js'
import {openBackend} from '../src/remote/registry.js'
import type {OxenTuning} from '../src/remote/oxen/oxen-transport.js'
import {Workspace} from '../src/workspace/workspace.js'
import {BIN, type CliRun} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {decodeIndex} from '../src/store/pack-format.js'
import {makeProject, tmpDir} from './support/fixtures.js'
import {type OxenHub, startOxenHub} from './support/oxen-hub.js'
import {S3RVER_KEY, startS3Server, type S3TestServer} from './support/s3-server.js'

nock.restore()

const author = {name: 'Tester', email: 't@example.com'}
const SECRET = 'destroy-test-secret-Qm4v-never-print'

/** The CLI in its own process, awaited without blocking: the S3 and hub test servers run in this one. */
function cli(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd, env: {...process.env, TILESYNC_AUTHOR_NAME: 'Cli Test', TILESYNC_AUTHOR_EMAIL: 'cli@example.com', ...env}, stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? -1, stdout, stderr}))
  })
}

async function expectCode(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p
  } catch (error) {
    expect((error as {code?: string}).code, (error as Error).message).to.equal(code)
    return error as Error
  }
  return expect.fail(`expected ${code}`)
}

/** Every file under a directory with its bytes, for "nothing changed" comparisons. */
function snapshotDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  if (!fs.existsSync(dir)) return out
  for (const e of fs.readdirSync(dir, {recursive: true, withFileTypes: true})) {
    if (!e.isFile()) continue
    const file = path.join(e.parentPath, e.name)
    out[path.relative(dir, file)] = fs.readFileSync(file).toString('base64')
  }
  return out
}

async function keysOf(backend: Backend): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for await (const k of backend.list('')) out[k.key] = (await backend.get(k.key))!.toString('base64')
  return out
}

/** A project with two commits on main and a branch "night" one commit further, both pushed to `url`. */
async function pushedProject(url: string, extra: Record<string, string> = {}): Promise<{ws: Workspace; dir: string; db: string}> {
  const {dir, db} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  setGeneration(db, 0, 0, 901)
  await commit(ws, {message: 'second', author})
  await addRemote(ws.repo, 'origin', url, extra)
  await push(ws, {})
  await switchBranch(ws, 'night', {create: true})
  setGeneration(db, 1, 0, 902)
  await commit(ws, {message: 'night run', author})
  await push(ws, {branch: 'night'})
  await switchBranch(ws, 'main')
  return {ws, dir, db}
}

/** Files another tool keeps next to the remote's keys: they must survive everything. */
const FOREIGN: Record<string, string> = {
  'README.txt': 'not tilesync\n',
  'objects/notes.md': 'someone else\'s notes under objects/\n',
  'objects/ab/not-an-object-id': 'x',
  'tmp/upload.bin': 'another tool\'s scratch file',
  'refs/tags/v1': 'a git-like ref that tilesync never writes',
  'exports/tiles.csv': 'x,y\n0,0\n',
}

describe('push --delete and remote destroy', function () {
  this.timeout(120_000)

  describe('directory remote', () => {
    async function setUp(): Promise<{ws: Workspace; dir: string; remoteDir: string}> {
      const remoteDir = path.join(tmpDir('destroy-remote'), 'r')
      const p = await pushedProject(remoteDir)
      for (const [k, v] of Object.entries(FOREIGN)) {
        fs.mkdirSync(path.dirname(path.join(remoteDir, k)), {recursive: true})
        fs.writeFileSync(path.join(remoteDir, k), v)
      }
      return {...p, remoteDir}
    }

    it('a missing or wrong confirmation changes nothing, on the remote or here; --dry-run only shows', async () => {
      const {ws, dir, remoteDir} = await setUp()
      const remoteBefore = snapshotDir(remoteDir)
      const localBefore = snapshotDir(path.join(dir, '.tilesync'))

      const missing = await cli(dir, ['remote', 'destroy', 'origin'])
      expect(missing.code, missing.stdout + missing.stderr).to.equal(1)
      expect(missing.stdout, 'what would go is shown first').to.match(/branches: main \([0-9a-f]{10}\), night/).and.match(/commits: +3/)
      expect(missing.stderr).to.include('needs confirmation').and.include('--confirm origin')

      const wrong = await cli(dir, ['remote', 'destroy', 'origin', '--confirm', 'orig'])
      expect(wrong.code).to.equal(1)
      expect(wrong.stderr).to.include('is not the remote\'s name "origin"')
      const wrongCase = await cli(dir, ['remote', 'destroy', 'origin', '--confirm', 'Origin', '--json'])
      expect(wrongCase.code).to.equal(1)
      expect(JSON.parse(wrongCase.stdout).error.code).to.equal('BAD_ARGUMENT')

      const dry = await cli(dir, ['remote', 'destroy', 'origin', '--dry-run', '--json'])
      expect(dry.code, dry.stderr).to.equal(0)
      const shown = JSON.parse(dry.stdout)
      const objectFiles = Object.keys(remoteBefore).filter((k) => /^objects\/[0-9a-f]{2}\/[0-9a-f]{62}$/.test(k))
      const packFiles = Object.keys(remoteBefore).filter((k) => /^packs\/[dt]-[0-9a-f]{64}\.(pack|idx)$/.test(k))
      expect(packFiles.length, 'the push wrote packs').to.be.greaterThan(0)
      // Objects counted as objects: those in the packs' indexes and the loose ones.
      const ids = new Set(objectFiles.map((k) => k.slice('objects/'.length).replace('/', '')))
      for (const k of packFiles) if (k.endsWith('.idx')) for (const e of decodeIndex(Buffer.from(remoteBefore[k], 'base64'))) ids.add(e.id)
      expect(shown).to.include({remote: 'origin', dryRun: true, commits: 3, objects: ids.size})
      expect(shown.branches.map((b: {name: string}) => b.name)).to.deep.equal(['main', 'night'])
      // Loose objects, packs and their indexes, two refs and tilesync.json; nothing of FOREIGN.
      expect(shown.keys).to.equal(objectFiles.length + packFiles.length + 3)
      expect(shown.bytes).to.be.greaterThan(0)

      expect(snapshotDir(remoteDir), 'the remote is untouched').to.deep.equal(remoteBefore)
      const localAfter = snapshotDir(path.join(dir, '.tilesync'))
      delete localAfter['sync-log.jsonl']
      delete localBefore['sync-log.jsonl']
      expect(localAfter, 'nothing changed here either').to.deep.equal(localBefore)
      expect(await ws.repo.refs.read('refs/remotes/origin/night')).to.be.a('string')
    })

    it('with the name typed exactly, removes every key tilesync wrote and nothing else; a push starts the remote again', async () => {
      const {ws, dir, remoteDir} = await setUp()
      const r = await cli(dir, ['remote', 'destroy', 'origin', '--confirm', 'origin'])
      expect(r.code, r.stdout + r.stderr).to.equal(0)
      expect(r.stdout).to.include('Destroyed remote origin')
      const left = snapshotDir(remoteDir)
      expect(Object.keys(left).sort()).to.deep.equal(Object.keys(FOREIGN).sort())
      for (const [k, v] of Object.entries(FOREIGN)) expect(Buffer.from(left[k], 'base64').toString()).to.equal(v)
      // Emptied directories go; the ones holding someone else's files stay.
      expect(fs.existsSync(path.join(remoteDir, 'refs', 'heads'))).to.equal(false)
      expect(fs.readdirSync(path.join(remoteDir, 'objects')).sort()).to.deep.equal(['ab', 'notes.md'])
      expect(fs.readdirSync(path.join(remoteDir, 'tmp'))).to.deep.equal(['upload.bin'])

      expect(await ws.repo.refs.list('refs/remotes/origin')).to.deep.equal([])
      expect(fs.existsSync(ws.repo.layout.remoteState('origin'))).to.equal(false)
      expect((await readSyncLog(ws.repo)).at(-1)).to.include({op: 'destroy', remote: 'origin', result: 'ok'})

      // Still configured: pushing recreates it from scratch, and it clones.
      const again = await push(ws, {})
      expect(again.from).to.equal(null)
      expect(again.objects).to.be.greaterThan(0)
      const c = await clone({url: remoteDir, dir: path.join(tmpDir('clone'), 'c')})
      expect(c.head).to.equal(await ws.repo.refs.read('refs/heads/main'))
    })

    it('on a terminal, asks for the name: a wrong answer changes nothing, the exact one destroys', async () => {
      const {dir, remoteDir} = await setUp()
      const before = snapshotDir(remoteDir)
      const wrong = await onTerminal(dir, ['remote', 'destroy', 'origin'], 'orig')
      expect(wrong.code, wrong.out).to.equal(1)
      expect(wrong.out).to.include("Type the remote's name (origin)").and.include('is not the remote\'s name')
      expect(snapshotDir(remoteDir)).to.deep.equal(before)
      const right = await onTerminal(dir, ['remote', 'destroy', 'origin'], 'origin')
      expect(right.code, right.out).to.equal(0)
      expect(right.out).to.include('Destroyed remote origin')
      expect(Object.keys(snapshotDir(remoteDir)).sort()).to.deep.equal(Object.keys(FOREIGN).sort())
    })

    it('removes nothing when the remote moved between what was shown and the deletion', async () => {
      const {ws, remoteDir} = await setUp()
      const shown = await destroyRemote(ws, 'origin', {dryRun: true})
      const before = snapshotDir(remoteDir)
      // Move night on the remote directly through another repository's push.
      const {ws: second, db} = await secondWriter(remoteDir)
      setGeneration(db, 2, 0, 977)
      await commit(second, {message: 'someone else', author})
      await push(second, {branch: 'night'})
      const moved = snapshotDir(remoteDir)
      expect(moved).to.not.deep.equal(before)
      await expectCode(destroyRemote(ws, 'origin', {confirm: 'origin', expected: shown.branches}), 'REMOTE_MOVED')
      expect(snapshotDir(remoteDir)).to.deep.equal(moved)
    })

    it('push --delete removes a remote branch only where the last fetch saw it', async () => {
      const {ws, dir, remoteDir} = await setUp()
      // Someone else moves night: the delete is refused and night stays.
      const {ws: second, db} = await secondWriter(remoteDir)
      setGeneration(db, 3, 0, 978)
      await commit(second, {message: 'more night', author})
      await push(second, {branch: 'night'})
      const nightThere = fs.readFileSync(path.join(remoteDir, 'refs', 'heads', 'night'), 'utf8').trim()

      const refused = await cli(dir, ['push', 'origin', '--delete', 'night'])
      expect(refused.code, refused.stdout + refused.stderr).to.equal(1)
      expect(refused.stderr).to.include('remote moved').and.include('nothing was deleted')
      expect(fs.readFileSync(path.join(remoteDir, 'refs', 'heads', 'night'), 'utf8').trim()).to.equal(nightThere)

      // After a fetch it is what we saw: --dry-run leaves it, then it goes.
      await fetchRemote(ws, {})
      const dry = await cli(dir, ['push', 'origin', '--delete', 'night', '--dry-run'])
      expect(dry.code, dry.stderr).to.equal(0)
      expect(dry.stdout).to.include('Would delete origin/night')
      expect(fs.existsSync(path.join(remoteDir, 'refs', 'heads', 'night'))).to.equal(true)
      const done = await cli(dir, ['push', 'origin', '--delete', 'night', '--json'])
      expect(done.code, done.stdout + done.stderr).to.equal(0)
      expect(JSON.parse(done.stdout)).to.include({remote: 'origin', branch: 'night', from: nightThere, deleted: true})
      expect(fs.existsSync(path.join(remoteDir, 'refs', 'heads', 'night'))).to.equal(false)
      expect(fs.existsSync(path.join(remoteDir, 'refs', 'heads', 'main'))).to.equal(true)
      expect(await ws.repo.refs.read('refs/remotes/origin/night')).to.equal(null)
      // Local branches are not touched.
      expect(await ws.repo.refs.read('refs/heads/night')).to.be.a('string')

      // Without a tracking ref there is nothing to compare with: refused.
      const none = await cli(dir, ['push', 'origin', '--delete', 'night'])
      expect(none.code).to.equal(1)
      expect(none.stderr).to.include('has no branch "night"')
    })

    it('push --delete needs a fetch first when the branch was never seen here', async () => {
      const {remoteDir} = await setUp()
      const {ws: second, dir} = await secondWriter(remoteDir)
      await ws2Forget(second, 'night')
      const r = await cli(dir, ['push', 'origin', '--delete', 'night'])
      expect(r.code).to.equal(1)
      expect(r.stderr).to.include('fetch origin first')
      expect(fs.existsSync(path.join(remoteDir, 'refs', 'heads', 'night'))).to.equal(true)
    })
  })

  describe('S3 remote (s3rver)', () => {
    let server: S3TestServer
    const saved: Record<string, string | undefined> = {}
    const opened: Backend[] = []
    before(async () => {
      server = await startS3Server({buckets: ['shared']})
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) saved[k] = process.env[k]
      process.env.AWS_ACCESS_KEY_ID = S3RVER_KEY
      process.env.AWS_SECRET_ACCESS_KEY = SECRET
    })
    after(async () => {
      for (const b of opened) await b.close?.()
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
      await server?.stop()
    })

    it('keys other tools wrote in the bucket survive, inside the prefix and beside it; a wrong confirmation changes nothing', async () => {
      const prefix = `team-${randomBytes(4).toString('hex')}`
      const url = `s3://shared/${prefix}`
      const {ws, dir} = await pushedProject(url, {endpoint: server.endpoint})
      const inside = await openBackend({url, endpoint: server.endpoint})
      const bucket = await openBackend({url: 's3://shared', endpoint: server.endpoint})
      opened.push(inside, bucket)
      for (const [k, v] of Object.entries(FOREIGN)) await inside.put(k, Buffer.from(v))
      await bucket.put('other-project/objects/aa/' + 'b'.repeat(62), Buffer.from('not ours: another prefix'))
      await bucket.put(`${prefix}-sibling/tilesync.json`, Buffer.from('{}'))
      const everything = await keysOf(bucket)

      const env = {AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: SECRET}
      const wrong = await cli(dir, ['remote', 'destroy', 'origin', '--confirm', 'staging'], env)
      expect(wrong.code).to.equal(1)
      const missing = await cli(dir, ['remote', 'destroy', 'origin'], env)
      expect(missing.code).to.equal(1)
      expect(missing.stderr).to.include('needs confirmation')
      const dry = await destroyRemote(ws, 'origin', {dryRun: true})
      expect(dry).to.include({commits: 3, dryRun: true})
      expect(dry.branches.map((b) => b.name)).to.deep.equal(['main', 'night'])
      expect(await keysOf(bucket), 'nothing changed').to.deep.equal(everything)

      server.requestLog.reset()
      const r = await cli(dir, ['remote', 'destroy', 'origin', '--confirm', 'origin', '--json'], env)
      expect(r.code, r.stdout + r.stderr).to.equal(0)
      const done = JSON.parse(r.stdout)
      expect(done).to.include({objects: dry.objects, keys: dry.keys, dryRun: false})
      // The two branch refs one by one (compare-and-swap), everything else in one DeleteObjects batch.
      expect(server.requestLog.count('DELETE'), 'branch refs').to.equal(2)
      // s3rver deletes a batch's keys in parallel and then answers 500 when two of them race to
      // remove the same emptied directory (its filesystem store's readdirSync): the retry of the
      // batch then finds the keys gone and succeeds. R2 and S3 answer the first.
      const batches = server.requestLog.entries.filter((e) => e.method === 'POST' && e.url.includes('?delete')).length
      expect(batches, 'one batch (and at most its retry)').to.be.within(1, 2)
      const left = await keysOf(bucket)
      const expected = Object.fromEntries(Object.entries(everything).filter(([k]) => !k.startsWith(`${prefix}/`) || Object.keys(FOREIGN).includes(k.slice(prefix.length + 1))))
      expect(left).to.deep.equal(expected)
      expect(Object.keys(left)).to.have.length(Object.keys(FOREIGN).length + 2)
      expect(r.stdout + r.stderr).to.not.include(SECRET)
    })

    it('deleteMany: 1,000 keys a request, absent keys are no error, other keys stay', async () => {
      const prefix = `many-${randomBytes(4).toString('hex')}`
      const b = await openBackend({url: `s3://shared/${prefix}`, endpoint: server.endpoint})
      opened.push(b)
      const keys = Array.from({length: 1001}, (_, i) => `k/${String(i).padStart(4, '0')}`)
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => b.put(k, Buffer.from(k))))
      await b.put('keep', Buffer.from('stays'))
      server.requestLog.reset()
      await b.deleteMany!([...keys, 'k/never-written'])
      const batches = server.requestLog.entries.filter((e) => e.method === 'POST' && e.url.includes('?delete')).length
      // Two batches (1,000 + 2), each perhaps retried once after s3rver's directory race (see above).
      expect(batches).to.be.within(2, 4)
      expect(server.requestLog.count('DELETE')).to.equal(0)
      expect(Object.keys(await keysOf(b))).to.deep.equal(['keep'])
    })
  })

  describe('oxen remote (test hub)', () => {
    let hub: OxenHub
    before(async () => {
      hub = await startOxenHub()
    })
    after(async () => {
      await hub.close()
    })
    const tuning = (): OxenTuning => ({token: hub.token, backoffMs: 5, env: {}})

    it('deletes the hub repository after the exact name, not before; a push creates it again', async () => {
      const {dir, db} = makeProject()
      await initRepository({dir})
      const ws = await Workspace.open(dir)
      await commit(ws, {message: 'first', author})
      setGeneration(db, 0, 0, 933)
      await commit(ws, {message: 'second', author})
      await addRemote(ws.repo, 'hub', 'oxen://tiles/doomed', {host: hub.host})
      await push(ws, {remote: 'hub', transport: tuning()})
      const exists = async () => (await fetch(`${hub.url}/api/repos/tiles/doomed`, {headers: {authorization: `Bearer ${hub.token}`}})).status

      const env = {OXEN_API_TOKEN: hub.token}
      const wrong = await cli(dir, ['remote', 'destroy', 'hub', '--confirm', 'hub2'], env)
      expect(wrong.code).to.equal(1)
      const missing = await cli(dir, ['remote', 'destroy', 'hub'], env)
      expect(missing.code, missing.stdout + missing.stderr).to.equal(1)
      expect(missing.stdout).to.include('hub repository tiles/doomed').and.match(/commits: +3/)
      const dry = await cli(dir, ['remote', 'destroy', 'hub', '--dry-run', '--json'], env)
      expect(dry.code, dry.stderr).to.equal(0)
      // The hub's own first commit (made when the dataset's first workspace opened) and one per tilesync commit.
      expect(JSON.parse(dry.stdout)).to.include({commits: 3, dryRun: true, what: 'hub repository tiles/doomed'})
      expect(hub.count('DELETE')).to.equal(0)
      expect(await exists()).to.equal(200)

      const r = await destroyRemote(ws, 'hub', {confirm: 'hub', transport: tuning()})
      expect(r.branches.map((b) => b.name)).to.deep.equal(['main'])
      expect(hub.count('DELETE', '/api/repos/tiles/doomed')).to.equal(1)
      expect(await exists(), 'gone once destroy returns, though the hub deletes in the background').to.equal(404)
      expect(fs.existsSync(ws.repo.layout.remoteState('hub'))).to.equal(false)
      expect(await ws.repo.refs.list('refs/remotes/hub')).to.deep.equal([])

      const again = await push(ws, {remote: 'hub', transport: tuning()})
      expect(again.from).to.equal(null)
      expect(await exists()).to.equal(200)
    })

    it('push --delete removes a hub branch by compare-and-swap', async () => {
      const {dir, db} = makeProject()
      await initRepository({dir})
      const ws = await Workspace.open(dir)
      await commit(ws, {message: 'first', author})
      await addRemote(ws.repo, 'hub', 'oxen://tiles/branchy', {host: hub.host})
      await push(ws, {remote: 'hub', transport: tuning()})
      await switchBranch(ws, 'night', {create: true})
      setGeneration(db, 0, 1, 955)
      await commit(ws, {message: 'night', author})
      await push(ws, {remote: 'hub', branch: 'night', transport: tuning()})
      // Another user moves night on the hub: the delete is refused.
      hub.commitDirect('tiles', 'branchy', 'night', {'notes.txt': Buffer.from('someone else')})
      await expectCode(deleteRemoteBranch(ws, {remote: 'hub', branch: 'night', transport: tuning()}), 'REMOTE_MOVED')
      await fetchRemote(ws, {remote: 'hub', transport: tuning()})
      hub.resetLog()
      const d = await deleteRemoteBranch(ws, {remote: 'hub', branch: 'night', transport: tuning()})
      expect(d.deleted).to.equal(true)
      expect(hub.count('DELETE', '/api/repos/tiles/branchy/branches/night')).to.equal(1)
      const branches = await (await fetch(`${hub.url}/api/repos/tiles/branchy/branches`, {headers: {authorization: `Bearer ${hub.token}`}})).json() as {branches: Array<{name: string}>}
      expect(branches.branches.map((b) => b.name)).to.deep.equal(['main'])
    })
  })
})

/** Another clone of the remote, as a second person pushing to it. */
async function secondWriter(remoteDir: string): Promise<{ws: Workspace; dir: string; db: string}> {
  const dir = path.join(tmpDir('second'), 's')
  const c = await clone({url: remoteDir, dir})
  const ws = await Workspace.open(dir)
  await fetchRemote(ws, {})
  // Work on night, as the first repository pushed it.
  const night = (await ws.repo.refs.read('refs/remotes/origin/night'))!
  await switchBranch(ws, 'night', {create: true, from: night})
  return {ws, dir, db: path.join(dir, c.database)}
}

/**
 * The CLI on a pseudo-terminal (`script`), typing `answer` once the prompt shows: the
 * interactive confirmation a user meets.
 */
function onTerminal(cwd: string, args: string[], answer: string): Promise<{code: number; out: string}> {
  return new Promise((resolve, reject) => {
    const command = [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' ')
    const child = spawn('script', ['-qec', command, '/dev/null'], {cwd, env: {...process.env, CI: ''}, stdio: ['pipe', 'pipe', 'pipe']})
    let out = ''
    let typed = false
    const onData = (d: Buffer): void => {
      out += d.toString()
      if (!typed && out.includes("Type the remote's name")) {
        typed = true
        child.stdin.write(`${answer}\r`)
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? -1, out}))
  })
}

/** Forgets that a remote branch was ever fetched here. */
async function ws2Forget(ws: Workspace, branch: string): Promise<void> {
  await ws.repo.refs.update(`refs/remotes/origin/${branch}`, null, 'test: forget')
}
