import {expect} from 'chai'
import {createHash} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {ancestors} from '../../src/history/graph.js'
import {switchBranch} from '../../src/ops/branches.js'
import {clone} from '../../src/ops/clone.js'
import {commit} from '../../src/ops/commit.js'
import {destroyRemote} from '../../src/ops/destroy-remote.js'
import {fetchRemote} from '../../src/ops/fetch.js'
import {initRepository} from '../../src/ops/init.js'
import {pull} from '../../src/ops/pull.js'
import {push} from '../../src/ops/push.js'
import {addRemote, openRemote} from '../../src/ops/remotes.js'
import {status} from '../../src/ops/status.js'
import type {RemoteConfig} from '../../src/repo/config.js'
import type {TransportTuning} from '../../src/remote/registry.js'
import {Workspace} from '../../src/workspace/workspace.js'
import {generationOf, setGeneration} from './edit.js'
import {dumpDatabase, makeProject, png, tmpDir, withDb} from './fixtures.js'

/** One fresh, empty remote of the kind under test, with the kind's ways to look at it and to hurt it. */
export interface RemoteUnderTest {
  url: string
  /** Settings a `remote add` of it needs (an endpoint, a host). */
  extra?: Omit<RemoteConfig, 'url'>
  tuning?: TransportTuning
  /** What was stored on the remote since `resetWritten` (object keys, dataset paths): refs and meta files aside. */
  written(): Promise<string[]>
  resetWritten(): Promise<void>
  /** Whether one of `written()` is the upload of `blob` (a tile image). */
  isUploadOf(entry: string, blob: Buffer): boolean
  /**
   * Makes the next pushes fail part-way, after some of their objects were stored, on the upload
   * of one of `blobs` (tile images the push sends); returns what makes them succeed again. A
   * kind that can should fail that upload while others are still in flight.
   */
  interrupt(blobs: Buffer[]): Promise<() => Promise<void>>
  /** Damages what the remote serves for `blob`: bytes appended, or cut short. */
  tamper(blob: Buffer, how: 'append' | 'truncate'): Promise<void>
}

export interface KindUnderTest {
  newRemote(): Promise<RemoteUnderTest>
  /** The codes a download of a damaged object is refused with. */
  corruptCodes: string[]
}

const author = {name: 'Conformance', email: 'c@example.com'}

async function expectCode(p: Promise<unknown>, codes: string[]): Promise<Error & {code?: string}> {
  try {
    await p
  } catch (error) {
    expect(codes, (error as Error).message).to.include((error as {code?: string}).code)
    return error as Error
  }
  return expect.fail(`expected ${codes.join(' or ')}`)
}

/** Every file under `.tilesync/` (the sync log aside: dry runs are recorded there) and the database, by content. */
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

/** The files of `localState` that differ between two readings of it. */
function changed(before: Record<string, string>, after: Record<string, string>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k]).sort()
}

/**
 * What every kind of remote must do, whatever carries the objects: the transport conformance
 * suite. A kind's test file calls it with a factory of fresh remotes, then adds what only that
 * kind has.
 */
export function runTransportConformance(name: string, kind: () => KindUnderTest): void {
  describe(`transport conformance: ${name}`, function () {
    this.timeout(120_000)
    let k: KindUnderTest

    before(() => {
      k = kind()
    })

    /** A project committed once and pushed to a new remote of the kind. */
    async function pushed(): Promise<{ws: Workspace; db: string; r: RemoteUnderTest}> {
      const r = await k.newRemote()
      const {dir, db} = makeProject()
      await initRepository({dir})
      const ws = await Workspace.open(dir)
      await commit(ws, {message: 'first', author})
      await addRemote(ws.repo, 'origin', r.url, r.extra)
      await push(ws, {transport: r.tuning})
      return {ws, db, r}
    }

    async function cloneOf(r: RemoteUnderTest, options: {branch?: string} = {}): Promise<{ws: Workspace; db: string; dir: string}> {
      const dir = path.join(tmpDir('clone'), 'c')
      const c = await clone({url: r.url, dir, remote: r.extra, transport: r.tuning, branch: options.branch})
      return {ws: await Workspace.open(dir), db: path.join(dir, c.database), dir}
    }

    /** Changes three tiles (their generation and render) and commits; the images are what the push must send. */
    async function editThree(ws: Workspace, db: string, seed: number, message: string): Promise<{id: string; blobs: Buffer[]}> {
      const tiles: Array<[number, number]> = [[0, 0], [1, 0], [-2, 1]]
      const blobs: Buffer[] = []
      tiles.forEach(([x, y], i) => {
        setGeneration(db, x, y, seed + i)
        withDb(db, (d) => d.prepare('UPDATE quadrants SET render = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(png(seed + 50 + i), x, y))
        blobs.push(png(seed + i), png(seed + 50 + i))
      })
      return {id: (await commit(ws, {message, author})).id!, blobs}
    }

    it('a clone is identical; a second push sends nothing; an increment sends only its images and a few small objects', async () => {
      const {ws, db, r} = await pushed()
      const b = await cloneOf(r)
      expect(dumpDatabase(b.db)).to.deep.equal(dumpDatabase(db))
      expect(await b.ws.repo.refs.headCommit()).to.equal(await ws.repo.refs.headCommit())

      await r.resetWritten()
      const again = await push(ws, {transport: r.tuning})
      expect([again.upToDate, again.objects, again.bytes]).to.deep.equal([true, 0, 0])
      expect(await r.written()).to.deep.equal([])

      const {blobs} = await editThree(ws, db, 100, 'three tiles')
      await r.resetWritten()
      const inc = await push(ws, {transport: r.tuning})
      const sent = await r.written()
      expect(inc.commits).to.equal(1)
      expect(inc.objects).to.equal(sent.length)
      for (const blob of blobs) expect(sent.filter((e) => r.isUploadOf(e, blob)), 'each changed image once').to.have.length(1)
      // Besides the six images: trees and the commit, or the dataset's small files; never the other 24 tiles.
      expect(sent.length - blobs.length).to.be.within(1, 12)

      await r.resetWritten()
      expect((await push(ws, {transport: r.tuning})).upToDate).to.equal(true)
      expect(await r.written()).to.deep.equal([])
      await pull(b.ws, {transport: r.tuning})
      expect(dumpDatabase(b.db)).to.deep.equal(dumpDatabase(db))
    })

    it('a diverged push is refused with REMOTE_MOVED before anything is sent, and the remote branch stays', async () => {
      const {r} = await pushed()
      const b = await cloneOf(r)
      const c = await cloneOf(r)
      setGeneration(b.db, 0, 0, 201)
      const theirs = await commit(b.ws, {message: 'b edits 0,0', author})
      await push(b.ws, {transport: r.tuning})
      setGeneration(c.db, 1, 1, 301)
      await commit(c.ws, {message: 'c edits 1,1', author})
      await r.resetWritten()
      const refused = await expectCode(push(c.ws, {transport: r.tuning}), ['REMOTE_MOVED'])
      expect(refused.message).to.include('pull first')
      expect(await r.written()).to.deep.equal([])
      expect(await (await cloneOf(r)).ws.repo.refs.headCommit()).to.equal(theirs.id)
    })

    it('two pushers at once: exactly one wins, the other pulls, merges and pushes; nothing is lost', async () => {
      const {r} = await pushed()
      const b = await cloneOf(r)
      const c = await cloneOf(r)
      setGeneration(b.db, 0, 0, 211)
      const bCommit = await commit(b.ws, {message: 'b edits 0,0', author})
      setGeneration(c.db, 1, 1, 311)
      const cCommit = await commit(c.ws, {message: 'c edits 1,1', author})
      const results = await Promise.allSettled([push(b.ws, {transport: r.tuning}), push(c.ws, {transport: r.tuning})])
      const lost = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')
      expect(results.filter((x) => x.status === 'fulfilled')).to.have.length(1)
      expect(lost).to.have.length(1)
      expect(lost[0].reason.code, lost[0].reason.message).to.equal('REMOTE_MOVED')
      expect(lost[0].reason.message).to.include('pull first')

      const loser = results[0].status === 'rejected' ? b : c
      const p = await pull(loser.ws, {transport: r.tuning})
      expect(p.merge?.outcome).to.equal('merged')
      expect((await status(loser.ws)).clean).to.equal(true)
      await push(loser.ws, {transport: r.tuning})

      const d = await cloneOf(r)
      const history = await ancestors(d.ws.reader, (await d.ws.repo.refs.headCommit())!)
      expect(history.has(bCommit.id!), 'b\'s commit kept').to.equal(true)
      expect(history.has(cCommit.id!), 'c\'s commit kept').to.equal(true)
      expect(generationOf(d.db, 0, 0)).to.deep.equal(png(211))
      expect(generationOf(d.db, 1, 1)).to.deep.equal(png(311))
      expect(dumpDatabase(d.db)).to.deep.equal(dumpDatabase(loser.db))
      const winner = loser === b ? c : b
      await pull(winner.ws, {transport: r.tuning})
      expect(dumpDatabase(winner.db)).to.deep.equal(dumpDatabase(loser.db))
    })

    it('an interrupted push leaves the remote branch where it was; the next one sends only what is missing', async () => {
      const {ws, db, r} = await pushed()
      const before = await ws.repo.refs.headCommit()
      const {id, blobs} = await editThree(ws, db, 400, 'three tiles, interrupted')
      await r.resetWritten()
      const heal = await r.interrupt(blobs)
      await expectCode(push(ws, {transport: r.tuning}), ['TRANSFER_FAILED', 'REMOTE_PROTOCOL', 'REMOTE_UNREACHABLE'])
      const first = await r.written()
      expect(first.length, 'the push got part-way').to.be.greaterThan(0)
      expect(await (await cloneOf(r)).ws.repo.refs.headCommit(), 'the branch did not move').to.equal(before)
      expect(await r.written(), 'nothing is stored after the failed push has returned').to.deep.equal(first)

      await heal()
      await r.resetWritten()
      const resumed = await push(ws, {transport: r.tuning})
      const second = await r.written()
      expect(resumed.to).to.equal(id)
      expect(second.length).to.be.greaterThan(0)
      expect(second.filter((e) => first.includes(e)), 'nothing sent twice').to.deep.equal([])
      for (const blob of blobs) expect([...first, ...second].some((e) => r.isUploadOf(e, blob)), 'every image sent').to.equal(true)
      const fresh = await cloneOf(r)
      expect(dumpDatabase(fresh.db)).to.deep.equal(dumpDatabase(db))
    })

    for (const how of ['append', 'truncate'] as const) {
      it(`a ${how === 'append' ? 'tampered' : 'truncated'} object is refused before anything local changes`, async () => {
        const {ws, db, r} = await pushed()
        const b = await cloneOf(r)
        setGeneration(db, 2, 2, 600)
        await commit(ws, {message: 'one tile', author})
        await push(ws, {transport: r.tuning})
        await r.tamper(png(600), how)

        const before = localState(b.ws, b.db)
        await expectCode(pull(b.ws, {transport: r.tuning}), k.corruptCodes)
        expect(changed(before, localState(b.ws, b.db)), 'database, refs and store of the clone').to.deep.equal([])

        const dir = path.join(tmpDir('clone'), 'c')
        await expectCode(clone({url: r.url, dir, remote: r.extra, transport: r.tuning}), k.corruptCodes)
        expect(fs.existsSync(dir), 'clone directory left behind').to.equal(false)
        // Into an existing directory: only what the clone created is removed.
        const existing = tmpDir('clone-existing')
        fs.writeFileSync(path.join(existing, 'keep.txt'), 'mine')
        await expectCode(clone({url: r.url, dir: existing, remote: r.extra, transport: r.tuning}), k.corruptCodes)
        expect(fs.readdirSync(existing)).to.deep.equal(['keep.txt'])
      })
    }

    it('--dry-run writes nothing: push, fetch, pull and clone count what they would move', async () => {
      const {ws, db, r} = await pushed()
      const b = await cloneOf(r)
      await editThree(ws, db, 700, 'three tiles')

      await r.resetWritten()
      const a0 = localState(ws, db)
      const dry = await push(ws, {dryRun: true, transport: r.tuning})
      expect([dry.dryRun, dry.commits]).to.deep.equal([true, 1])
      expect(dry.objects).to.be.greaterThan(6)
      expect(await r.written()).to.deep.equal([])
      expect(changed(a0, localState(ws, db))).to.deep.equal([])
      const real = await push(ws, {transport: r.tuning})
      expect([real.objects, real.commits]).to.deep.equal([dry.objects, dry.commits])
      await r.resetWritten()

      // Up to date: not even the remote-tracking ref moves.
      const first = (await ws.reader.commit(real.to)).parents[0]
      await ws.repo.refs.update('refs/remotes/origin/main', first, 'test: behind')
      const a1 = localState(ws, db)
      expect((await push(ws, {dryRun: true, transport: r.tuning})).upToDate).to.equal(true)
      expect(changed(a1, localState(ws, db))).to.deep.equal([])

      const b0 = localState(b.ws, b.db)
      const f = await fetchRemote(b.ws, {dryRun: true, transport: r.tuning})
      expect(f.dryRun).to.equal(true)
      expect(f.branches.map((x) => x.commits)).to.deep.equal([1])
      const p = await pull(b.ws, {dryRun: true, transport: r.tuning})
      expect([p.dryRun, p.merge]).to.deep.equal([true, null])
      expect(changed(b0, localState(b.ws, b.db))).to.deep.equal([])

      const dir = path.join(tmpDir('clone'), 'dry')
      const c = await clone({url: r.url, dir, remote: r.extra, transport: r.tuning, dryRun: true})
      expect(c.dryRun).to.equal(true)
      expect(c.commits).to.be.at.least(2)
      expect(fs.existsSync(dir)).to.equal(false)
      expect(await r.written()).to.deep.equal([])
    })

    it('a branch is created by a push, fetched and cloned, and deleted', async () => {
      const {ws, db, r} = await pushed()
      await switchBranch(ws, 'night', {create: true})
      setGeneration(db, 1, 2, 801)
      const night = await commit(ws, {message: 'night run', author})
      const made = await push(ws, {branch: 'night', transport: r.tuning})
      expect([made.from, made.to, made.commits]).to.deep.equal([null, night.id, 1])

      const remote = await openRemote(ws.repo, 'origin', r.tuning)
      try {
        expect((await remote.listBranches(ws)).map((x) => x.name)).to.deep.equal(['main', 'night'])
        const c = await cloneOf(r, {branch: 'night'})
        expect(dumpDatabase(c.db)).to.deep.equal(dumpDatabase(db))
        const main = await cloneOf(r)
        await fetchRemote(main.ws, {transport: r.tuning})
        expect(await main.ws.repo.refs.read('refs/remotes/origin/night')).to.equal(night.id)

        expect(remote.deleteBranch, 'branch deletion is a capability of every kind here').to.be.a('function')
        const seen = (await remote.readBranch('night', ws))!
        expect(seen.commit).to.equal(night.id)
        setGeneration(db, 1, 2, 802)
        await commit(ws, {message: 'night run, again', author})
        await push(ws, {branch: 'night', transport: r.tuning})
        expect(await remote.deleteBranch!('night', seen), 'a branch that moved since it was read is not deleted').to.equal(false)
        expect(await remote.deleteBranch!('night', (await remote.readBranch('night', ws))!)).to.equal(true)
        expect((await remote.listBranches(ws)).map((x) => x.name)).to.deep.equal(['main'])
        expect(await remote.readBranch('night', ws)).to.equal(null)
      } finally {
        await remote.close()
      }
      // main is untouched and still clones whole.
      const after = await cloneOf(r)
      expect(after.ws.repo.config.remotes.origin.url).to.be.a('string')
      expect((await after.ws.repo.refs.readHead())).to.include({branch: 'main'})
    })

    it('remote destroy: a dry run or a wrong confirmation removes nothing; the name removes it all; a push starts it again', async () => {
      const {ws, db, r} = await pushed()
      const branchesNow = async (): Promise<string[]> => {
        const remote = await openRemote(ws.repo, 'origin', r.tuning)
        try {
          return (await remote.listBranches(ws)).map((b) => b.name)
        } catch (error) {
          // A hosted repository that no longer exists has no branches.
          if ((error as {code?: string}).code === 'REMOTE_UNKNOWN') return []
          throw error
        } finally {
          await remote.close()
        }
      }
      const shown = await destroyRemote(ws, 'origin', {dryRun: true, transport: r.tuning})
      expect(shown.branches.map((b) => b.name)).to.deep.equal(['main'])
      expect(shown.commits).to.be.at.least(1)
      await expectCode(destroyRemote(ws, 'origin', {confirm: 'Origin', transport: r.tuning}), ['BAD_ARGUMENT'])
      await expectCode(destroyRemote(ws, 'origin', {transport: r.tuning}), ['BAD_ARGUMENT'])
      expect(await branchesNow()).to.deep.equal(['main'])
      expect(dumpDatabase((await cloneOf(r)).db)).to.deep.equal(dumpDatabase(db))

      await destroyRemote(ws, 'origin', {confirm: 'origin', expected: shown.branches, transport: r.tuning})
      expect(await branchesNow()).to.deep.equal([])
      expect(await ws.repo.refs.list('refs/remotes/origin')).to.deep.equal([])
      const again = await push(ws, {transport: r.tuning})
      expect(again.from).to.equal(null)
      expect(dumpDatabase((await cloneOf(r)).db)).to.deep.equal(dumpDatabase(db))
    })
  })
}
