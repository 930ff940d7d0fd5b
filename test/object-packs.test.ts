import {expect} from 'chai'
import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {hashBytes} from '../src/core/hash.js'
import {checkout} from '../src/ops/checkout.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {fsckLocal} from '../src/ops/fsck.js'
import {gc} from '../src/ops/gc.js'
import {initRepository} from '../src/ops/init.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {Workspace} from '../src/workspace/workspace.js'
import {HashingPool} from '../src/store/hashing-pool.js'
import {decodeIndex} from '../src/store/pack-format.js'
import {PackWriter} from '../src/store/pack-writer.js'
import {LocalObjectStore} from '../src/store/local-object-store.js'
import {setGeneration} from './support/edit.js'
import {dumpDatabase, makeProject, tmpDir} from './support/fixtures.js'

const author = {name: 'P', email: 'p@example.com'}

function freshStore(): {dir: string; store: LocalObjectStore} {
  const dir = tmpDir('packs')
  fs.mkdirSync(path.join(dir, 'objects'), {recursive: true})
  fs.mkdirSync(path.join(dir, 'tmp'), {recursive: true})
  return {dir, store: new LocalObjectStore(path.join(dir, 'objects'), path.join(dir, 'tmp'))}
}

/** Another process's view of the same store: it sees only what is on disk. */
const reopen = (dir: string): LocalObjectStore => new LocalObjectStore(path.join(dir, 'objects'), path.join(dir, 'tmp'))

const blobs = (n: number, size = 40_000): Buffer[] => Array.from({length: n}, () => randomBytes(size))

const packFiles = (dir: string): string[] => fs.readdirSync(path.join(dir, 'objects', 'pack')).sort()

async function storePacked(store: LocalObjectStore, items: Buffer[], workers = 2): Promise<string[]> {
  const pool = new HashingPool(store, 'store', {packed: true, size: workers})
  try {
    // Copies: the pool takes ownership of (detaches) what it is given.
    return await Promise.all(items.map((b) => pool.put(Buffer.from(b))))
  } finally {
    await pool.close()
  }
}

describe('object packs', function () {
  this.timeout(120_000)

  it('bulk writes go into a few packs, not one file per blob, and read back verified from another process', async () => {
    const {dir, store} = freshStore()
    const items = blobs(60)
    const ids = await storePacked(store, items)
    expect(ids).to.deep.equal(items.map((b) => hashBytes(b)))
    const files = packFiles(dir)
    expect(files.filter((f) => f.endsWith('.pack'))).to.have.length.within(1, 2)
    expect(files.filter((f) => f.endsWith('.idx'))).to.have.length(files.length / 2)
    // At most a few loose objects per worker; the rest are packed.
    const loose = fs.readdirSync(path.join(dir, 'objects')).filter((d) => d !== 'pack')
      .reduce((n, d) => n + fs.readdirSync(path.join(dir, 'objects', d)).length, 0)
    expect(loose).to.be.at.most(16)
    const other = reopen(dir)
    for (const [i, id] of ids.entries()) {
      expect(await other.has(id)).to.equal(true)
      expect((await other.get(id)).equals(items[i])).to.equal(true)
      expect(await other.sizeOf(id)).to.equal(items[i].length)
    }
    const listed: Array<{id: string; size: number}> = []
    for await (const o of other.list()) listed.push(o)
    expect(listed.map((o) => o.id).sort()).to.deep.equal([...ids].sort())
    expect(listed.every((o, i) => o.size === items[ids.indexOf(o.id)].length && (i === 0 || listed[i - 1].id !== o.id))).to.equal(true)
  })

  it('a pack is invisible to other processes until its index is written, and readable at once by its writer', async () => {
    const {dir, store} = freshStore()
    const pool = new HashingPool(store, 'store', {packed: true, size: 1})
    const items = blobs(20)
    const ids = await Promise.all(items.map((b) => pool.put(Buffer.from(b))))
    const last = ids.at(-1)!
    expect(fs.readdirSync(path.join(dir, 'objects', 'pack')).some((f) => f.endsWith('.idx'))).to.equal(false)
    expect((await store.get(last)).equals(items.at(-1)!)).to.equal(true)
    expect(await reopen(dir).has(last)).to.equal(false)
    await pool.close()
    expect(await reopen(dir).has(last)).to.equal(true)
  })

  it('a lookup finds a packed object that a concurrent lookup\'s refresh loaded', async () => {
    const {dir, store} = freshStore()
    const ids = await storePacked(store, blobs(30))
    const packed = ids.filter((id) => !fs.existsSync(store.pathOf(id)))
    const packs = reopen(dir).packs
    // The race, made deterministic: by the time this lookup's own look at the directory
    // returns, another lookup has read every index, so its refresh finds nothing new.
    const refresh = packs.refreshIfChanged.bind(packs)
    packs.refreshIfChanged = async () => {
      await refresh()
      return false
    }
    expect(await packs.lookup(packed[0])).to.not.equal(undefined)
  })

  it('does not store again what a pack already holds', async () => {
    const {dir, store} = freshStore()
    const items = blobs(30)
    await storePacked(store, items)
    const before = packFiles(dir)
    await storePacked(reopen(dir), items)
    expect(packFiles(dir)).to.deep.equal(before)
  })

  it('a flipped byte inside a pack reads as OBJECT_CORRUPT, never as data', async () => {
    const {dir, store} = freshStore()
    const items = blobs(30)
    const ids = await storePacked(store, items)
    const other = reopen(dir)
    const victim = ids.find((id) => !fs.existsSync(other.pathOf(id)))!
    const at = (await other.packs.lookup(victim))!
    const file = other.packs.packPath(at.pack)
    const fd = fs.openSync(file, 'r+')
    const b = Buffer.alloc(1)
    fs.readSync(fd, b, 0, 1, at.offset + 100)
    fs.writeSync(fd, Buffer.from([b[0] ^ 0xff]), 0, 1, at.offset + 100)
    fs.closeSync(fd)
    let code = ''
    await reopen(dir).get(victim).catch((e: {code: string}) => {
      code = e.code
    })
    expect(code).to.equal('OBJECT_CORRUPT')
  })

  it('keepPresent answers for many ids at once, loose and packed, and refreshes their times for gc', async () => {
    const {dir, store} = freshStore()
    const items = blobs(30)
    const ids = await storePacked(store, items)
    const other = reopen(dir)
    const loose = ids.filter((id) => fs.existsSync(other.pathOf(id)))
    const packed = ids.filter((id) => !fs.existsSync(other.pathOf(id)))
    expect(loose).to.not.be.empty
    expect(packed).to.not.be.empty
    const old = new Date(Date.now() - 3 * 3600_000)
    for (const id of loose) fs.utimesSync(other.pathOf(id), old, old)
    const packPath = other.packs.packPath((await other.packs.lookup(packed[0]))!.pack)
    fs.utimesSync(packPath, old, old)
    const absent = blobs(3).map((b) => hashBytes(b))
    const here = await reopen(dir).keepPresent([...absent, ...ids])
    expect([...here].sort()).to.deep.equal([...ids].sort())
    const recent = Date.now() - 60_000
    for (const id of loose) expect(fs.statSync(other.pathOf(id)).mtimeMs).to.be.greaterThan(recent)
    expect(fs.statSync(packPath).mtimeMs).to.be.greaterThan(recent)
  })

  it('removing packed objects rewrites their pack with what it keeps; the old pack goes', async () => {
    const {dir, store} = freshStore()
    const items = blobs(40)
    const ids = await storePacked(store, items)
    const other = reopen(dir)
    const packed = ids.filter((id) => !fs.existsSync(other.pathOf(id)))
    const drop = new Set(packed.slice(0, 5))
    const before = packFiles(dir)
    await other.deleteMany(drop)
    const after = packFiles(dir)
    expect(after.filter((f) => before.includes(f))).to.have.length.below(before.length)
    const third = reopen(dir)
    for (const [i, id] of ids.entries()) {
      if (drop.has(id)) expect(await third.has(id), id).to.equal(false)
      else expect((await third.get(id)).equals(items[i])).to.equal(true)
    }
  })

  it('many small packs merge into one: every object still reads, none twice, and their age is kept', async () => {
    const {dir} = freshStore()
    const all: Buffer[] = []
    const ids: string[] = []
    // 12 blobs on one worker: 8 loose, 4 in a pack of their own.
    for (let i = 0; i < 17; i++) {
      const items = blobs(12)
      all.push(...items)
      ids.push(...await storePacked(reopen(dir), items.map((b) => Buffer.from(b)), 1))
    }
    const packs = (): string[] => packFiles(dir).filter((f) => f.endsWith('.pack'))
    expect(packs()).to.have.length(17)
    const hours = (h: number): Date => new Date(Date.now() - h * 3_600_000)
    packs().forEach((f, i) => fs.utimesSync(path.join(dir, 'objects', 'pack', f), hours(20 - i), hours(20 - i)))
    expect(await reopen(dir).consolidatePacks()).to.equal(17)
    expect(packs()).to.have.length(1)
    const merged = path.join(dir, 'objects', 'pack', packs()[0])
    expect(fs.statSync(merged).mtimeMs).to.be.closeTo(hours(4).getTime(), 5_000)
    const other = reopen(dir)
    for (const [i, id] of ids.entries()) expect((await other.get(id)).equals(all[i])).to.equal(true)
    const listed: string[] = []
    for await (const o of other.list()) listed.push(o.id)
    expect(listed.length).to.equal(new Set(listed).size)
    // Below the threshold nothing is rewritten.
    expect(await reopen(dir).consolidatePacks()).to.equal(0)
    expect(packs()).to.deep.equal([path.basename(merged)])
  })

  it('a merge killed after writing the new pack but before removing the old ones loses nothing, and the next gc drops the sources', async () => {
    const {dir} = freshStore()
    const packDir = path.join(dir, 'objects', 'pack')
    const ids: string[] = []
    for (let i = 0; i < 16; i++) ids.push(...await storePacked(reopen(dir), blobs(12), 1))
    // The state such a crash leaves: the sources still there beside the merged pack.
    const aside = tmpDir('packs-aside')
    for (const f of packFiles(dir)) fs.copyFileSync(path.join(packDir, f), path.join(aside, f))
    await reopen(dir).consolidatePacks()
    for (const f of fs.readdirSync(aside)) fs.copyFileSync(path.join(aside, f), path.join(packDir, f))
    expect(packFiles(dir).filter((f) => f.endsWith('.pack'))).to.have.length(17)
    const other = reopen(dir)
    for (const id of ids) expect(await other.has(id)).to.equal(true)
    // The merged pack holds everything its 16 sources do: they go, it stays.
    expect(await reopen(dir).consolidatePacks({dryRun: true})).to.equal(16)
    expect(packFiles(dir).filter((f) => f.endsWith('.pack'))).to.have.length(17)
    expect(await reopen(dir).consolidatePacks()).to.equal(16)
    const idx = packFiles(dir).filter((f) => f.endsWith('.idx'))
    expect(idx).to.have.length(1)
    const packedIds = ids.filter((id) => !fs.existsSync(other.pathOf(id)))
    const entries = decodeIndex(fs.readFileSync(path.join(packDir, idx[0])))
    expect(entries.map((e) => e.id).sort()).to.deep.equal([...packedIds].sort())
  })

  it('packs whose every object another pack holds are dropped, smallest first, and the pack kept takes the newer time', async () => {
    const {dir} = freshStore()
    const packDir = path.join(dir, 'objects', 'pack')
    const [x, y, z] = blobs(3)
    const [ix, iy, iz] = [x, y, z].map((b) => hashBytes(b))
    const writePack = async (items: Buffer[], hoursAgo: number): Promise<string> => {
      const writer = new PackWriter(packDir, path.join(dir, 'tmp'), {durable: false})
      for (const b of items) writer.append(hashBytes(b), b)
      const [made] = await writer.finish()
      const time = new Date(Date.now() - hoursAgo * 3_600_000)
      fs.utimesSync(path.join(packDir, `${made.name}.pack`), time, time)
      return made.name
    }
    // What a merge killed half-way leaves: the merged pack, and some of its sources.
    const merged = await writePack([x, y, z], 10)
    await writePack([x], 1)
    await writePack([y, z], 5)
    // A pack that holds something no other does stays.
    const own = await writePack([blobs(1)[0], x], 7)
    expect(await reopen(dir).consolidatePacks()).to.equal(2)
    expect(packFiles(dir).filter((f) => f.endsWith('.pack')).sort()).to.deep.equal([`${merged}.pack`, `${own}.pack`].sort())
    expect(fs.statSync(path.join(packDir, `${merged}.pack`)).mtimeMs).to.be.closeTo(Date.now() - 3_600_000, 60_000)
    const other = reopen(dir)
    for (const [id, b] of [[ix, x], [iy, y], [iz, z]] as const) expect((await other.get(id)).equals(b)).to.equal(true)
  })

  it('a pack left without an index by a killed write holds no objects, and gc removes it once old', async () => {
    const {dir, db} = makeProject()
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'c0', author})
    const packDir = path.join(dir, '.tilesync', 'objects', 'pack')
    fs.mkdirSync(packDir, {recursive: true})
    const orphan = path.join(packDir, 'pack-000000000000000000000000.pack')
    fs.writeFileSync(orphan, randomBytes(5000))
    expect((await fsckLocal(ws)).ok).to.equal(true)
    await gc(ws)
    expect(fs.existsSync(orphan), 'young orphan kept').to.equal(true)
    const old = new Date(Date.now() - 30 * 24 * 3_600_000)
    fs.utimesSync(orphan, old, old)
    const result = await gc(ws)
    expect(fs.existsSync(orphan)).to.equal(false)
    expect(result.tmp.files).to.equal(1)
    expect(fs.existsSync(db)).to.equal(true)
  })

  it('packing loose objects: a loose copy of a packed object just goes, a file that does not match its name stays, nothing below the minimum', async () => {
    const {dir, store} = freshStore()
    const packDir = path.join(dir, 'objects', 'pack')
    const items = blobs(5)
    const ids: string[] = []
    for (const b of items) ids.push(await store.put(b))
    // What a packing killed after its pack was indexed leaves: two objects both loose and packed.
    const writer = new PackWriter(packDir, path.join(dir, 'tmp'), {durable: false})
    writer.append(ids[0], items[0])
    writer.append(ids[1], items[1])
    const [killed] = await writer.finish()
    const tenHoursAgo = new Date(Date.now() - 10 * 3_600_000)
    fs.utimesSync(path.join(packDir, `${killed.name}.pack`), tenHoursAgo, tenHoursAgo)
    const damaged = Buffer.from(items[2])
    damaged[7] ^= 0xff
    fs.writeFileSync(store.pathOf(ids[2]), damaged)
    expect(await reopen(dir).packLoose(ids, {minCount: 4, dryRun: true})).to.equal(2)
    expect(await reopen(dir).packLoose(ids, {minCount: 3, dryRun: true})).to.equal(5)
    expect(ids.every((id) => fs.existsSync(store.pathOf(id))), 'a dry run changes nothing').to.equal(true)
    // Below the minimum no pack is made, but loose copies of packed objects still go.
    expect(await reopen(dir).packLoose(ids, {minCount: 4})).to.equal(2)
    expect(ids.filter((id) => fs.existsSync(store.pathOf(id)))).to.deep.equal(ids.slice(2))
    expect(packFiles(dir).filter((f) => f.endsWith('.pack'))).to.have.length(1)
    expect(await reopen(dir).packLoose(ids, {minCount: 1})).to.equal(2)
    expect(ids.filter((id) => fs.existsSync(store.pathOf(id))), 'only the damaged file is still loose').to.deep.equal([ids[2]])
    expect(packFiles(dir).filter((f) => f.endsWith('.pack'))).to.have.length(2)
    // The pack that kept the copies took their newer time.
    expect(fs.statSync(path.join(packDir, `${killed.name}.pack`)).mtimeMs).to.be.closeTo(Date.now(), 60_000)
    const other = reopen(dir)
    for (const i of [0, 1, 3, 4]) expect((await other.get(ids[i])).equals(items[i])).to.equal(true)
    let error: unknown
    await other.get(ids[2]).catch((e: unknown) => { error = e })
    expect((error as {code?: string}).code).to.equal('OBJECT_CORRUPT')
  })

  it('packing loose objects keeps a loose copy whose packed copy is damaged', async () => {
    const {dir, store} = freshStore()
    const packDir = path.join(dir, 'objects', 'pack')
    const [item] = blobs(1)
    const id = await store.put(item)
    const writer = new PackWriter(packDir, path.join(dir, 'tmp'), {durable: false})
    const at = writer.append(id, item)
    const [made] = await writer.finish()
    const packFile = path.join(packDir, `${made.name}.pack`)
    const bytes = fs.readFileSync(packFile)
    bytes[at.offset + 10] ^= 0xff
    fs.writeFileSync(packFile, bytes)
    expect(await reopen(dir).packLoose([id], {minCount: 1})).to.equal(0)
    expect(fs.existsSync(store.pathOf(id))).to.equal(true)
    expect((await reopen(dir).get(id)).equals(item)).to.equal(true)
  })

  describe('in a repository', () => {
    it('gc packs the loose files of reachable objects; young strays and files hard-linked elsewhere stay loose', async () => {
      const {dir, db, ws} = await bigProject()
      const first = await commit(ws, {message: 'first', author})
      const original = dumpDatabase(db)
      for (let i = 0; i < 8; i++) {
        setGeneration(db, i % 6, Math.floor(i / 6), 5000 + i)
        await commit(ws, {message: `edit ${i}`, author})
      }
      const store = ws.repo.store
      const looseFiles = async (): Promise<string[]> => {
        const out: string[] = []
        for await (const o of reopen(path.join(dir, '.tilesync')).list()) if (!o.pack) out.push(o.id)
        return out.sort()
      }
      const reachableLoose = await looseFiles()
      expect(reachableLoose.length).to.be.at.least(64)
      // Ages: all old, one two days old; the new pack must take the newest time.
      const old = new Date(Date.now() - 10 * 24 * 3_600_000)
      const twoDays = new Date(Date.now() - 2 * 24 * 3_600_000)
      for (const id of reachableLoose) fs.utimesSync(store.pathOf(id), old, old)
      fs.utimesSync(store.pathOf(reachableLoose[3]), twoDays, twoDays)
      // A file shared with another store (a clone's hard link) and a young unreachable stray.
      const shared = reachableLoose[0]
      fs.linkSync(store.pathOf(shared), path.join(tmpDir('elsewhere'), 'shared-object'))
      const stray = await store.put(randomBytes(5000))
      const packsBefore = packFiles(path.join(dir, '.tilesync')).filter((f) => f.endsWith('.pack'))
      const preview = await gc(await Workspace.open(dir), {dryRun: true})
      expect(preview.loosePacked).to.equal(reachableLoose.length - 1)
      expect(await looseFiles()).to.deep.equal([...reachableLoose, stray].sort())
      const result = await gc(await Workspace.open(dir))
      expect(result.loosePacked).to.equal(preview.loosePacked)
      expect(await looseFiles()).to.deep.equal([shared, stray].sort())
      const made = packFiles(path.join(dir, '.tilesync')).filter((f) => f.endsWith('.pack') && !packsBefore.includes(f))
      expect(made).to.have.length(1)
      expect(fs.statSync(path.join(dir, '.tilesync', 'objects', 'pack', made[0])).mtimeMs).to.be.closeTo(twoDays.getTime(), 1000)
      const after = await Workspace.open(dir)
      const check = await fsckLocal(after)
      expect(check.ok, JSON.stringify(check.problems)).to.equal(true)
      await checkout(after, {revision: first.id!})
      expect(dumpDatabase(db)).to.deep.equal(original)
      expect((await gc(await Workspace.open(dir))).loosePacked, 'nothing left to pack').to.equal(0)
    })

    /** Tiles big enough (noisy 96 px PNGs) to be hashed on workers, so the first commit packs them. */
    async function bigProject(): Promise<{dir: string; db: string; ws: Workspace}> {
      const {dir, db} = makeProject({imageSize: 96, noise: 1})
      await initRepository({dir})
      return {dir, db, ws: await Workspace.open(dir)}
    }

    it('the first commit packs its blobs; checkout, push and clone give back identical databases', async () => {
      const {dir, db, ws} = await bigProject()
      const original = dumpDatabase(db)
      const first = await commit(ws, {message: 'first', author})
      expect(packFiles(path.join(dir, '.tilesync')).filter((f) => f.endsWith('.pack')).length).to.be.greaterThan(0)
      setGeneration(db, 0, 0, 4242)
      await commit(ws, {message: 'second', author})
      const remote = tmpDir('pack-remote')
      addRemote(ws.repo, 'origin', remote)
      await push(ws, {remote: 'origin'})
      const target = path.join(tmpDir('pack-clone'), 'copy')
      // Copied, not hard-linked: the clone writes the blobs it receives into packs.
      await clone({url: remote, dir: target, noHardLinks: true})
      expect(dumpDatabase(path.join(target, path.relative(dir, db)))).to.deep.equal(dumpDatabase(db))
      expect((await fsckLocal(await Workspace.open(target))).ok).to.equal(true)
      expect(packFiles(path.join(target, '.tilesync')).filter((f) => f.endsWith('.pack')).length, 'clone packs too').to.be.greaterThan(0)
      await checkout(ws, {revision: first.id!})
      expect(dumpDatabase(db)).to.deep.equal(original)
      expect((await fsckLocal(await Workspace.open(dir))).ok).to.equal(true)
    })

    it('gc merges many small packs into one and keeps every object', async () => {
      const {dir, db, ws} = await bigProject()
      await commit(ws, {message: 'first', author})
      const young: string[] = []
      for (let i = 0; i < 16; i++) young.push(...await storePacked(ws.repo.store, blobs(12), 1))
      const packDir = path.join(dir, '.tilesync', 'objects', 'pack')
      const before = fs.readdirSync(packDir).filter((f) => f.endsWith('.pack')).length
      expect(before).to.be.at.least(17)
      const preview = await gc(await Workspace.open(dir), {dryRun: true})
      expect(preview.packsMerged).to.equal(before)
      expect(fs.readdirSync(packDir).filter((f) => f.endsWith('.pack'))).to.have.length(before)
      const result = await gc(await Workspace.open(dir))
      expect(result.packsMerged).to.equal(before)
      expect(fs.readdirSync(packDir).filter((f) => f.endsWith('.pack'))).to.have.length(1)
      const after = await Workspace.open(dir)
      for (const id of young) expect(await after.repo.store.has(id), 'young unreachable objects stay').to.equal(true)
      const check = await fsckLocal(after)
      // fsck reads and hashes every reachable object, the committed tiles among them.
      expect(check.ok, JSON.stringify(check.problems)).to.equal(true)
      expect(check.unreferenced.objects).to.equal(young.length)
      expect(fs.existsSync(db)).to.equal(true)
    })

    it('fsck finds a damaged pack index and --repair rebuilds it from the pack', async () => {
      const {dir, ws} = await bigProject()
      await commit(ws, {message: 'first', author})
      const packDir = path.join(dir, '.tilesync', 'objects', 'pack')
      const idx = fs.readdirSync(packDir).find((f) => f.endsWith('.idx'))!
      const bytes = fs.readFileSync(path.join(packDir, idx))
      bytes[20] ^= 0xff
      fs.writeFileSync(path.join(packDir, idx), bytes)
      const damaged = await fsckLocal(await Workspace.open(dir))
      expect(damaged.ok).to.equal(false)
      expect(damaged.problems.map((p) => p.kind)).to.include('bad-pack')
      const repaired = await fsckLocal(await Workspace.open(dir), {repair: true})
      expect(repaired.ok, JSON.stringify(repaired.problems)).to.equal(true)
    })

    it('gc removes unreachable packed blobs only once their pack is past the grace period', async () => {
      const {dir, db, ws} = await bigProject()
      await commit(ws, {message: 'first', author})
      const stray = blobs(30)
      const strayIds = await storePacked(ws.repo.store, stray)
      expect((await gc(await Workspace.open(dir))).removed.objects, 'young: kept').to.equal(0)
      const packDir = path.join(dir, '.tilesync', 'objects', 'pack')
      const old = new Date(Date.now() - 30 * 24 * 3_600_000)
      for (const f of fs.readdirSync(packDir)) fs.utimesSync(path.join(packDir, f), old, old)
      for (const id of strayIds) if (fs.existsSync(ws.repo.store.pathOf(id))) fs.utimesSync(ws.repo.store.pathOf(id), old, old)
      const result = await gc(await Workspace.open(dir))
      expect(result.removed.objects).to.equal(stray.length)
      expect(result.packsMerged, 'few packs: left as they are').to.equal(0)
      const after = await Workspace.open(dir)
      for (const id of strayIds) expect(await after.repo.store.has(id)).to.equal(false)
      const check = await fsckLocal(after)
      expect(check.ok, JSON.stringify(check.problems)).to.equal(true)
      expect(check.unreferenced.objects).to.equal(0)
      expect(fs.existsSync(db)).to.equal(true)
    })
  })
})
