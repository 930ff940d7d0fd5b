import {expect} from 'chai'
import {createHash, randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {hashBytes} from '../src/core/hash.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {fetchRemote} from '../src/ops/fetch.js'
import {fsckRemote} from '../src/ops/fsck.js'
import {initRepository} from '../src/ops/init.js'
import {pruneRemote} from '../src/ops/prune.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {DirectoryBackend} from '../src/remote/directory-backend.js'
import {MemoryBackend} from '../src/remote/memory-backend.js'
import {RemoteStore} from '../src/remote/object-store/remote-store.js'
import {openBackend} from '../src/remote/registry.js'
import {Workspace} from '../src/workspace/workspace.js'
import {dumpDatabase, makeProject, tmpDir, withDb} from './support/fixtures.js'
import {memoryBackends, registerMemoryRemotes} from './support/memory-remote.js'
import {idsStoredAt, remotePacks} from './support/packed-remote.js'
import {S3RVER_KEY, startS3Server, type S3TestServer} from './support/s3-server.js'

registerMemoryRemotes()

const author = {name: 'Packs', email: 'p@example.com'}
let bucketCounter = 0

async function project(options: Parameters<typeof makeProject>[0] = {}): Promise<{ws: Workspace; db: string}> {
  const {dir, db} = makeProject(options)
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  return {ws, db}
}

function memoryRemote(): {url: string; backend: MemoryBackend} {
  const bucket = `packed-${++bucketCounter}`
  const backend = new MemoryBackend(`memory://${bucket}`)
  memoryBackends.set(bucket, backend)
  return {url: `memory://${bucket}`, backend}
}

async function cloneOf(url: string, extra: {branch?: string; remote?: {endpoint?: string}} = {}): Promise<{ws: Workspace; db: string; dir: string}> {
  const dir = path.join(tmpDir('packed-clone'), 'c')
  const c = await clone({url, dir, ...extra})
  return {ws: await Workspace.open(dir), db: path.join(dir, c.database), dir}
}

/** Every file under `.tilesync/` (the sync log aside) and the database, by content. */
function localState(ws: Workspace, db: string): Record<string, string> {
  const out: Record<string, string> = {}
  const root = path.join(ws.repo.root, '.tilesync')
  for (const e of fs.readdirSync(root, {recursive: true, withFileTypes: true})) {
    if (!e.isFile() || e.name === 'sync-log.jsonl') continue
    const file = path.join(e.parentPath, e.name)
    out[path.relative(root, file)] = createHash('sha256').update(fs.readFileSync(file)).digest('hex')
  }
  out['<database>'] = JSON.stringify(dumpDatabase(db))
  return out
}

/** Changes `n` tiles' generation to fresh random images of `size` bytes and commits. */
async function changeTiles(ws: Workspace, db: string, n: number, size: number, message: string): Promise<Buffer[]> {
  const blobs: Buffer[] = []
  withDb(db, (d) => {
    const rows = d.prepare('SELECT quadrant_x AS x, quadrant_y AS y FROM quadrants ORDER BY quadrant_y, quadrant_x LIMIT ?').all(n) as Array<{x: number; y: number}>
    for (const r of rows) {
      const b = randomBytes(size)
      blobs.push(b)
      d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(b, r.x, r.y)
    }
  })
  await commit(ws, {message, author})
  return blobs
}

describe('packed remotes', function () {
  this.timeout(120_000)

  describe('on the test S3 server', () => {
    let server: S3TestServer
    const saved: Record<string, string | undefined> = {}
    before(async () => {
      server = await startS3Server({buckets: ['packs']})
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'TILESYNC_PACK_BYTES']) saved[k] = process.env[k]
      process.env.AWS_ACCESS_KEY_ID = S3RVER_KEY
      process.env.AWS_SECRET_ACCESS_KEY = 'packs-test-secret'
    })
    after(async () => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
      await server.stop()
    })
    afterEach(() => {
      delete process.env.TILESYNC_PACK_BYTES
    })

    async function pushedTo(options: {packBytes?: number; tiles?: number} = {}): Promise<{ws: Workspace; db: string; url: string; objects: number; requests: typeof server.requestLog.entries}> {
      const {ws, db} = await project({width: 10, height: options.tiles ? Math.ceil(options.tiles / 10) : 8, imageSize: 24, noise: 1})
      const url = `s3://packs/p-${randomBytes(4).toString('hex')}`
      await addRemote(ws.repo, 'origin', url, {endpoint: server.endpoint})
      if (options.packBytes) process.env.TILESYNC_PACK_BYTES = String(options.packBytes)
      server.requestLog.reset()
      const r = await push(ws, {})
      return {ws, db, url, objects: r.objects, requests: [...server.requestLog.entries]}
    }

    it('a first push of N objects makes a few requests, not N: two packs and their indexes, the meta file and the branch', async () => {
      const {db, url, objects, requests} = await pushedTo()
      expect(objects).to.be.greaterThan(150)
      const puts = requests.filter((e) => e.method === 'PUT')
      expect(puts.filter((e) => /\/packs\/[dt]-/.test(e.url)), puts.map((e) => e.url).join('\n')).to.have.length(4)
      expect(puts).to.have.length(6)
      expect(requests.length, requests.map((e) => `${e.method} ${e.url}`).join('\n')).to.be.at.most(12)
      expect(requests.filter((e) => e.url.includes('/objects/'))).to.deep.equal([])

      server.requestLog.reset()
      const c = await cloneOf(url, {remote: {endpoint: server.endpoint}})
      expect(dumpDatabase(c.db)).to.deep.equal(dumpDatabase(db))
      const clone = [...server.requestLog.entries]
      expect(clone.length, clone.map((e) => `${e.method} ${e.url} ${e.range ?? ''}`).join('\n')).to.be.at.most(14)
      expect(clone.filter((e) => e.url.includes('/objects/'))).to.deep.equal([])
    })

    it('a large pack goes up as a multipart upload of several parts, and reads back whole', async () => {
      const {ws, db} = await project()
      const url = `s3://packs/p-${randomBytes(4).toString('hex')}`
      await addRemote(ws.repo, 'origin', url, {endpoint: server.endpoint})
      await push(ws, {})
      const blobs = await changeTiles(ws, db, 8, 1024 * 1024, 'eight big tiles')
      process.env.TILESYNC_MULTIPART_BYTES = String(5 * 1024 * 1024)
      server.requestLog.reset()
      try {
        await push(ws, {})
      } finally {
        delete process.env.TILESYNC_MULTIPART_BYTES
      }
      const log = server.requestLog.entries
      const parts = log.filter((e) => e.method === 'PUT' && /[?&]partNumber=\d+/.test(e.url) && e.url.includes('/packs/d-'))
      expect(parts.length, 'an 8 MB pack in 5 MiB parts').to.equal(2)
      expect(log.filter((e) => e.method === 'POST' && e.url.includes('/packs/d-') && e.url.includes('uploads'))).to.have.length(1)
      expect(log.filter((e) => e.method === 'POST' && e.url.includes('/packs/d-') && e.url.includes('uploadId='))).to.have.length(1)
      const c = await cloneOf(url, {remote: {endpoint: server.endpoint}})
      expect(dumpDatabase(c.db)).to.deep.equal(dumpDatabase(db))
      for (const b of blobs) expect(await c.ws.repo.store.has(hashBytes(b))).to.equal(true)
    })

    it('the number of packs follows the bytes over the pack size (O(N / pack size) requests)', async () => {
      const packBytes = 64 * 1024
      const {url, objects, requests} = await pushedTo({packBytes})
      const packPuts = requests.filter((e) => e.method === 'PUT' && e.url.split('?')[0].endsWith('.pack'))
      const packs = await remotePacks((await openBackend({url, endpoint: server.endpoint})))
      const payload = packs.reduce((n, p) => n + p.entries.reduce((m, e) => m + e.length, 0), 0)
      expect(packPuts).to.have.length(packs.length)
      // Each pack but the last of its kind reaches the size; every object sits in one.
      expect(packs.length).to.be.within(Math.ceil(payload / (packBytes + 64 * 1024)), Math.ceil(payload / packBytes) + 2)
      expect(packs.length).to.be.greaterThan(2)
      expect(packs.reduce((n, p) => n + p.entries.length, 0)).to.equal(objects)
      expect(requests.length).to.be.at.most(2 * packs.length + 8)
    })

    it('a fetch of a few changed tiles from a big pack reads them by ranged GETs, not the whole pack', async () => {
      const {ws, db} = await project({width: 10, height: 8, imageSize: 24, noise: 1})
      const url = `s3://packs/p-${randomBytes(4).toString('hex')}`
      await addRemote(ws.repo, 'origin', url, {endpoint: server.endpoint})
      // The first commit on a stable branch; three tiles change on main; both go up in one data pack.
      await ws.repo.refs.update('refs/heads/stable', (await ws.repo.refs.headCommit())!, 'test: a stable branch')
      await changeTiles(ws, db, 3, 900, 'three tiles')
      await push(ws, {})
      await push(ws, {branch: 'stable'})
      const [data] = (await remotePacks(await openBackend({url, endpoint: server.endpoint}))).filter((p) => p.name.startsWith('d-'))
      const b = await cloneOf(url, {branch: 'stable', remote: {endpoint: server.endpoint}})
      server.requestLog.reset()
      await fetchRemote(b.ws, {})
      const reads = server.requestLog.entries.filter((e) => e.method === 'GET' && e.url.includes(`/packs/${data.name}.pack`))
      expect(reads.length).to.be.within(1, 3)
      for (const e of reads) expect(e.range, e.url).to.match(/^bytes=\d+-\d+$/)
      expect(server.requestLog.entries.length, 'the fetch: refs, pack listing, new indexes, tree pack, ranges').to.be.at.most(12)
    })
  })

  it('a pull of a few changed tiles reads them from a big pack by coalesced ranges', async () => {
    const {ws, db} = await project({width: 10, height: 8, imageSize: 24, noise: 1})
    const {url, backend} = memoryRemote()
    await addRemote(ws.repo, 'origin', url)
    // Commit 1 (the base B clones), then commit 2 changing three tiles, pushed in one go with commit 1's images.
    const first = (await ws.repo.refs.headCommit())!
    await ws.repo.refs.update('refs/heads/stable', first, 'test: a stable branch')
    const changed = await changeTiles(ws, db, 3, 900, 'three tiles')
    await push(ws, {})
    await push(ws, {branch: 'stable'})
    const packs = await remotePacks(backend)
    const data = packs.filter((p) => p.name.startsWith('d-'))
    expect(data).to.have.length(1)
    const dataKey = `packs/${data[0].name}.pack`
    const packSize = backend.keys.get(dataKey)!.bytes.length
    const b = await cloneOf(url, {branch: 'stable'})
    backend.ranges.length = 0
    const got = await fetchRemote(b.ws, {})
    expect(got.branches.find((x) => x.branch === 'main')?.commits).to.equal(1)
    const reads = backend.ranges.filter((r) => r.key === dataKey)
    // Three images of 900 bytes in a pack of 80 tiles: neighbours merged, far less than the pack.
    expect(reads.length).to.be.within(1, 3)
    const bytesRead = reads.reduce((n, r) => n + r.length, 0)
    expect(bytesRead).to.be.at.least(3 * 900)
    expect(bytesRead).to.be.below(packSize / 3)
    for (const blob of changed) expect(await b.ws.repo.store.has(hashBytes(blob))).to.equal(true)
  })

  for (const what of ['tampered', 'truncated'] as const) {
    it(`a ${what} pack index is refused and nothing local changes`, async () => {
      const {ws, db} = await project()
      const {url, backend} = memoryRemote()
      await addRemote(ws.repo, 'origin', url)
      await push(ws, {})
      const b = await cloneOf(url)
      await changeTiles(ws, db, 4, 500, 'four tiles')
      const before = new Set((await remotePacks(backend)).map((p) => p.name))
      await push(ws, {})
      const fresh = (await remotePacks(backend)).filter((p) => !before.has(p.name))
      expect(fresh.length).to.equal(2)
      for (const p of fresh) {
        const e = backend.keys.get(`packs/${p.name}.idx`)!
        if (what === 'truncated') e.bytes = e.bytes.subarray(0, e.bytes.length - 50)
        else e.bytes = Buffer.from(e.bytes.map((x, i) => (i === 20 ? x ^ 1 : x)))
      }
      const state = localState(b.ws, b.db)
      let code = ''
      await pull(b.ws, {}).catch((error: {code: string}) => {
        code = error.code
      })
      expect(code).to.equal('OBJECT_CORRUPT')
      expect(localState(b.ws, b.db)).to.deep.equal(state)
    })
  }

  it('prune repacks: unreachable objects leave their packs, what is kept moves to new packs, and a clone afterwards is exact', async () => {
    const {ws, db} = await project({width: 8, height: 6, imageSize: 20, noise: 1})
    const {url, backend} = memoryRemote()
    await addRemote(ws.repo, 'origin', url)
    await push(ws, {})
    for (let i = 0; i < 3; i++) {
      await changeTiles(ws, db, 5 + i, 400, `change ${i}`)
      await push(ws, {})
    }
    const packsBefore = await remotePacks(backend)
    await new Promise((r) => setTimeout(r, 20))
    // Within the grace period nothing goes.
    const young = await pruneRemote(ws.repo, 'origin', {keepLast: 1, graceMs: 3_600_000})
    expect(young.removed.objects).to.equal(0)
    expect(young.young.objects).to.be.greaterThan(0)
    expect((await remotePacks(backend)).map((p) => p.name).sort()).to.deep.equal(packsBefore.map((p) => p.name).sort())
    const r = await pruneRemote(ws.repo, 'origin', {keepLast: 1, graceMs: 0})
    expect(r.removed.objects).to.be.greaterThan(0)
    expect(r.repacked?.packs).to.be.greaterThan(0)
    const packsAfter = await remotePacks(backend)
    const held = packsAfter.flatMap((p) => p.entries.map((e) => e.id))
    expect(new Set(held).size, 'no object held twice').to.equal(held.length)
    expect(held.length, 'only what the kept commit reaches').to.equal(r.reachable)
    expect([...backend.keys.keys()].filter((k) => k.startsWith('objects/'))).to.deep.equal([])
    const rf = await fsckRemote(ws, 'origin')
    expect(rf.ok, JSON.stringify(rf.problems)).to.equal(true)
    const c = await cloneOf(url)
    expect(dumpDatabase(c.db)).to.deep.equal(dumpDatabase(db))
  })

  it('a remote in the layout before packs (one key per object) is read, and the next push moves it into packs', async () => {
    const {ws, db} = await project()
    const root = path.join(tmpDir('loose-remote'), 'r')
    const old = new RemoteStore(new DirectoryBackend(root), 'origin')
    // What an earlier tilesync wrote: every object under objects/, the branch, a tilesync.json without a layout.
    for await (const o of ws.repo.store.list()) await old.putObject(o.id, await ws.repo.store.get(o.id))
    const tip = (await ws.repo.refs.headCommit())!
    expect(await old.casBranch('main', null, tip)).to.equal(true)
    const c = ws.repo.config
    await old.writeMeta({format: 1, database: c.database, tileTable: c.tileTable, keyColumns: c.keyColumns, imageColumns: c.imageColumns, xyColumns: c.xyColumns, defaultBranch: 'main'})
    const looseCount = [...(await listKeys(old))].filter((k) => k.startsWith('objects/')).length
    expect(looseCount).to.be.greaterThan(20)

    const b = await cloneOf(root)
    expect(dumpDatabase(b.db)).to.deep.equal(dumpDatabase(db))

    await addRemote(ws.repo, 'origin', root)
    await ws.repo.refs.update('refs/remotes/origin/main', tip, 'test: as if pushed')
    await changeTiles(ws, db, 3, 300, 'after the upgrade')
    await push(ws, {})
    const keys = await listKeys(old)
    expect(keys.filter((k) => k.startsWith('objects/')), 'no loose object left').to.deep.equal([])
    expect(JSON.parse((await old.backend.get('tilesync.json'))!.toString())).to.include({layout: 'packs'})
    const packed = await idsStoredAt(old.backend, keys)
    expect(packed.length).to.be.greaterThan(looseCount)
    const rf = await fsckRemote(ws, 'origin')
    expect(rf.ok, JSON.stringify(rf.problems)).to.equal(true)
    const again = await cloneOf(root)
    expect(dumpDatabase(again.db)).to.deep.equal(dumpDatabase(db))
    await pull(b.ws, {})
    expect(dumpDatabase(b.db)).to.deep.equal(dumpDatabase(db))
    // The next push is an ordinary one: no listing of loose objects any more.
    await changeTiles(ws, db, 2, 300, 'later')
    const before = keys.length
    await push(ws, {})
    expect((await listKeys(old)).length).to.be.within(before + 2, before + 4)
  })

  it('a first commit of many small tiles writes packs, not a file per tile', async () => {
    const {dir, db} = makeProject({width: 40, height: 25, imageSize: 8})
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'first', author})
    const objects = path.join(dir, '.tilesync', 'objects')
    const files = fs.readdirSync(objects, {recursive: true, withFileTypes: true}).filter((e) => e.isFile())
    const loose = files.filter((e) => !e.parentPath.endsWith('pack'))
    const blobs = new Set<string>()
    withDb(db, (d) => {
      for (const r of d.prepare('SELECT generation, render FROM quadrants').all() as Array<{generation: Buffer | null; render: Buffer | null}>) {
        for (const b of [r.generation, r.render]) if (b) blobs.add(hashBytes(b))
      }
    })
    expect(blobs.size).to.be.greaterThan(1500)
    // The first few blobs stay loose (a small commit leaves no tiny pack), the trees are a few dozen.
    expect(loose.length, `${loose.length} loose files`).to.be.below(120)
    expect(files.length - loose.length).to.be.within(2, 6)
    for (const id of [...blobs].slice(0, 50)) expect(await ws.repo.store.has(id)).to.equal(true)
  })
})

async function listKeys(store: RemoteStore): Promise<string[]> {
  const out: string[] = []
  for await (const k of store.backend.list('')) out.push(k.key)
  return out.sort()
}
