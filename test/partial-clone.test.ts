import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {randomBytes} from 'node:crypto'

import {hashBytes} from '../src/core/hash.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {fetchRemote} from '../src/ops/fetch.js'
import {fsckLocal} from '../src/ops/fsck.js'
import {initRepository} from '../src/ops/init.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {openBackend} from '../src/remote/registry.js'
import type {BlobRef} from '../src/snapshot/model.js'
import {tileXY} from '../src/snapshot/rows.js'
import {Workspace} from '../src/workspace/workspace.js'
import {spawn} from 'node:child_process'

import {BIN, cli, type CliRun} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {DB_REL, makeProject, tmpDir, withDb} from './support/fixtures.js'
import {remotePacks} from './support/packed-remote.js'
import {S3RVER_KEY, S3RVER_SECRET, startS3Server, type S3TestServer} from './support/s3-server.js'

const author = {name: 'Tester', email: 't@example.com'}

/** The CLI as a separate process, without blocking this one: the S3 server runs in it. */
function run(cwd: string, args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd, env: {...process.env, TILESYNC_AUTHOR_NAME: 'Cli Test', TILESYNC_AUTHOR_EMAIL: 'cli@example.com'}})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? -1, stdout, stderr}))
  })
}

async function runJson<T>(cwd: string, args: string[]): Promise<T> {
  const r = await run(cwd, [...args, '--json'])
  if (r.code !== 0) throw new Error(`tilesync ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`)
  return JSON.parse(r.stdout) as T
}
const BOX: [number, number, number, number] = [0, 0, 2, 2]
const inBox = (x: number, y: number) => x >= BOX[0] && x <= BOX[2] && y >= BOX[1] && y <= BOX[3]

/** Every blob id of the tile table at `rev`, split by whether its tile is inside BOX. */
async function blobsAt(ws: Workspace, rev: string): Promise<{inside: Set<string>; outside: Map<string, [number, number]>}> {
  const state = await ws.stateOf(await ws.resolve(rev))
  const tile = state.tables.get(state.snapshot.tileTable!)!
  const inside = new Set<string>()
  const outside = new Map<string, [number, number]>()
  for await (const row of ws.reader.rows(tile)) {
    const [x, y] = tileXY(row, tile.partition)!
    for (let i = 0; i < row.types.length; i++) {
      if (row.types[i] !== 'b') continue
      const id = (row.values[i] as BlobRef).id
      if (inBox(x, y)) inside.add(id)
      else outside.set(id, [x, y])
    }
  }
  for (const id of inside) outside.delete(id)
  return {inside, outside}
}

describe('partial clone (clone --bbox): only the region\'s images, the rest from origin when needed', function () {
  this.timeout(120_000)
  let server: S3TestServer
  const env = {AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: S3RVER_SECRET}
  const saved: Record<string, string | undefined> = {}
  before(async () => {
    server = await startS3Server({buckets: ['partial']})
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k]
      process.env[k] = v
    }
  })
  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
    await server?.stop()
  })

  /** GET requests for object `id` on the bucket (one key per object, or a ranged read of a pack naming it). */
  /** Where each object sits in the remote's packs (see learnPacks): a ranged GET of a pack reads the objects its range covers. */
  let places = new Map<string, {pack: string; start: number; end: number}>()
  const learnPacks = async (url: string): Promise<void> => {
    const backend = await openBackend({url, endpoint: server.endpoint})
    places = new Map()
    for (const p of await remotePacks(backend)) for (const e of p.entries) places.set(e.id, {pack: p.name, start: e.offset, end: e.offset + e.length - 1})
    await backend.close?.()
  }
  const covers = (e: {url: string; range?: string}, id: string): boolean => {
    if (e.url.includes(id) || e.url.includes(`${id.slice(0, 2)}/${id.slice(2)}`)) return true
    const at = places.get(id)
    if (!at || !e.url.includes(`/packs/${at.pack}.pack`)) return false
    const m = /^bytes=(\d+)-(\d+)$/.exec(e.range ?? '')
    // A GET of the whole pack reads every object in it.
    return !m || (Number(m[1]) <= at.end && Number(m[2]) >= at.start)
  }
  const gets = (id: string) => server.requestLog.entries.filter((e) => e.method === 'GET' && covers(e, id)).length

  it('fetches only the region\'s blobs (counted on the remote); status, commit, push and fsck work; a command outside the region fetches what it needs', async () => {
    const {dir, db} = makeProject({seed: 7})
    await initRepository({dir})
    const origin = await Workspace.open(dir)
    await commit(origin, {message: 'first', author})
    setGeneration(db, -3, -2, 501)
    setGeneration(db, 1, 1, 502)
    await commit(origin, {message: 'two tiles', author})
    const url = `s3://partial/p-${randomBytes(4).toString('hex')}`
    await addRemote(origin.repo, 'origin', url, {endpoint: server.endpoint})
    await push(origin, {})
    await learnPacks(url)
    const head = await blobsAt(origin, 'HEAD')
    const older = await blobsAt(origin, 'HEAD~1')
    expect(head.inside.size).to.be.greaterThan(0)
    expect(head.outside.size).to.be.greaterThan(10)

    // --dry-run: the same figures, no image read, nothing created.
    server.requestLog.reset()
    const target = path.join(tmpDir('partial'), 'batch')
    const dry = await clone({url, dir: target, remote: {endpoint: server.endpoint}, bbox: BOX, dryRun: true})
    expect(fs.existsSync(target)).to.equal(false)
    for (const id of [...head.inside, ...head.outside.keys()]) expect(gets(id)).to.equal(0)

    server.requestLog.reset()
    const r = await clone({url, dir: target, remote: {endpoint: server.endpoint}, bbox: BOX})
    expect([dry.commits, dry.objects, dry.bytes, dry.partial]).to.deep.equal([r.commits, r.objects, r.bytes, r.partial])
    expect(r.commits).to.equal(2)
    expect(r.partial?.imagesInside).to.equal(head.inside.size)
    // On the remote: every image of the region read once, none outside it, none of older commits.
    for (const id of head.inside) expect(gets(id), `inside ${id}`).to.equal(1)
    for (const [id, xy] of head.outside) expect(gets(id), `outside tile ${xy}`).to.equal(0)
    for (const id of older.outside.keys()) expect(gets(id)).to.equal(0)
    for (const id of older.inside) if (!head.inside.has(id)) expect(gets(id)).to.equal(0)
    const cloneDb = path.join(target, r.database)
    expect(withDb(cloneDb, (d) => (d.prepare('SELECT count(*) AS n FROM quadrants').get() as {n: number}).n)).to.equal(9)
    expect(JSON.parse(fs.readFileSync(path.join(target, '.tilesync', 'partial.json'), 'utf8'))).to.deep.equal({remote: 'origin', bbox: BOX})

    // The 21 tiles outside the region are HEAD's, not deleted: status is clean, after a full rescan too.
    expect((await runJson<{clean: boolean}>(target, ['status'])).clean).to.equal(true)
    expect((await runJson<{clean: boolean}>(target, ['status', '--rescan'])).clean).to.equal(true)
    expect((await run(target, ['status'])).stdout).to.match(/Partial clone of tiles 0,0,2,2: the database holds those tiles/)

    // fsck: the images left on origin are expected, not missing.
    const f = await fsckLocal(await Workspace.open(target))
    expect(f.ok, JSON.stringify(f.problems.slice(0, 3))).to.equal(true)
    // Those of HEAD outside the region, and the older commit's images it replaced.
    const everyBlob = new Set([...head.inside, ...head.outside.keys(), ...older.inside, ...older.outside.keys()])
    expect(f.promised).to.deep.equal({objects: everyBlob.size - head.inside.size, remote: 'origin'})

    // Work in the region, commit, push: the pushed commit still has all 30 tiles.
    setGeneration(cloneDb, 2, 2, 777)
    server.requestLog.reset()
    const c = await run(target, ['commit', '-m', 'tile 2,2 again'])
    expect(c.code, c.stderr).to.equal(0)
    expect(server.requestLog.entries.map((e) => e.url)).to.deep.equal([])
    const shown = await runJson<{changes: {summary: {tilesModified: number; tilesDeleted: number}}}>(target, ['show', 'HEAD'])
    expect(shown.changes.summary).to.include({tilesModified: 1, tilesDeleted: 0})
    server.requestLog.reset()
    const p = await run(target, ['push', 'origin'])
    expect(p.code, p.stdout + p.stderr).to.equal(0)
    for (const id of head.outside.keys()) expect(gets(id)).to.equal(0)
    await fetchRemote(origin, {remote: 'origin'})
    const pushed = await origin.stateOf((await origin.repo.refs.read('refs/remotes/origin/main'))!)
    expect(pushed.tables.get('quadrants')!.rowCount).to.equal(30)

    // The origin moves on, inside and outside the region; the partial clone pulls only the region's new image.
    await pull(origin, {})
    setGeneration(db, 0, 1, 601)
    setGeneration(db, -2, -1, 602)
    await commit(origin, {message: 'inside and outside', author})
    await push(origin, {})
    await learnPacks(url)
    const newInside = hashBytes(withDb(db, (d) => (d.prepare('SELECT generation FROM quadrants WHERE quadrant_x = 0 AND quadrant_y = 1').get() as {generation: Buffer}).generation))
    const newOutside = hashBytes(withDb(db, (d) => (d.prepare('SELECT generation FROM quadrants WHERE quadrant_x = -2 AND quadrant_y = -1').get() as {generation: Buffer}).generation))
    server.requestLog.reset()
    const pl = await run(target, ['pull', 'origin'])
    expect(pl.code, pl.stdout + pl.stderr).to.equal(0)
    expect([gets(newInside), gets(newOutside)]).to.deep.equal([1, 0])
    expect(withDb(cloneDb, (d) => (d.prepare('SELECT count(*) AS n FROM quadrants').get() as {n: number}).n)).to.equal(9)
    expect(hashBytes(withDb(cloneDb, (d) => (d.prepare('SELECT generation FROM quadrants WHERE quadrant_x = 0 AND quadrant_y = 1').get() as {generation: Buffer}).generation))).to.equal(newInside)
    expect((await runJson<{clean: boolean}>(target, ['status'])).clean).to.equal(true)

    // checkout of an older commit writes the region's rows only (its older images come from origin) and back.
    const co = await run(target, ['checkout', 'HEAD~1'])
    expect(co.code, co.stderr).to.equal(0)
    expect((await runJson<{clean: boolean}>(target, ['status'])).clean).to.equal(true)
    expect((await run(target, ['checkout', 'main'])).code).to.equal(0)
    expect(withDb(cloneDb, (d) => (d.prepare('SELECT count(*) AS n FROM quadrants').get() as {n: number}).n)).to.equal(9)
    expect((await runJson<{clean: boolean}>(target, ['status', '--rescan'])).clean).to.equal(true)

    // A command outside the region: the image is read from origin (once), verified, and kept.
    const [ox, oy] = [-3, -2]
    const wanted = withDb(db, (d) => (d.prepare('SELECT generation FROM quadrants WHERE quadrant_x = -3 AND quadrant_y = -2').get() as {generation: Buffer}).generation)
    const outsideId = hashBytes(wanted)
    expect(head.outside.has(outsideId)).to.equal(true)
    server.requestLog.reset()
    const png = path.join(target, 'out.png')
    const s = await run(target, ['show', 'HEAD', '--tile', `${ox},${oy}`, '--layer', 'generation', '-o', png])
    expect(s.code, s.stderr).to.equal(0)
    expect(fs.readFileSync(png)).to.deep.equal(wanted)
    expect(gets(outsideId)).to.equal(1)
    const fetchedBlobs = [...head.outside.keys()].filter((id) => gets(id) > 0)
    expect(fetchedBlobs).to.deep.equal([outsideId])
    // Now it is local: a second read asks the remote nothing.
    server.requestLog.reset()
    expect((await run(target, ['show', 'HEAD', '--tile', `${ox},${oy}`, '--layer', 'generation', '-o', png])).code).to.equal(0)
    expect(gets(outsideId)).to.equal(0)

    // export of the whole commit reads the rest from origin: everything it needs arrives.
    const out = path.join(tmpDir('partial'), 'whole')
    const e = await run(target, ['export', out])
    expect(e.code, e.stderr).to.equal(0)
    expect(fs.readFileSync(path.join(out, 'generations.csv'), 'utf8').split('\n').filter(Boolean)).to.have.length(31)

    // An import that would change a tile outside the region is refused with nothing written
    // (the database cannot hold it, and the change record would take it for written).
    setGeneration(db, ox, oy, 777)
    await commit(origin, {message: 'outside, for an import', author})
    const batch = path.join(tmpDir('partial'), 'batch-outside')
    expect((await run(dir, ['export', batch, '--bbox', `${ox},${oy},${ox},${oy}`])).code).to.equal(0)
    const dbBefore = fs.readFileSync(path.join(target, DB_REL))
    const refused = await run(target, ['import', batch])
    expect(refused.code).to.equal(1)
    expect(refused.stderr).to.include('outside this partial clone\'s region')
    expect(fs.readFileSync(path.join(target, DB_REL)).equals(dbBefore)).to.equal(true)
    // An import from a remote compares every tile (and would fetch every image): refused up front.
    const hub = await run(target, ['import', 'oxen://ns/repo', '--host', '127.0.0.1:1'])
    expect(hub.code).to.equal(1)
    expect(hub.stderr).to.include('not for a partial clone')
  })

  it('refuses a remote without objects by id in one line, before anything is created', async () => {
    const cwd = tmpDir('partial')
    const r = cli(cwd, ['clone', 'oxen://ns/repo', 'x', '--host', '127.0.0.1:1', '--bbox', '0,0,1,1'], {OXEN_API_TOKEN: 'token'})
    expect(r.code).to.equal(1)
    expect(r.stderr.trim().split('\n')).to.have.length(1)
    expect(r.stderr).to.match(/a partial clone \(--bbox\) needs objects by id, which oxen remotes do not serve/)
    expect(fs.readdirSync(cwd)).to.deep.equal([])
  })
})
