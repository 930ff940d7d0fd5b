import Database from 'better-sqlite3'
import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {CREATED_PAGE_SIZE} from '../src/db/open-database.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {switchBranch} from '../src/ops/branches.js'
import {abortMerge, mergeCommit, resolveMerge} from '../src/ops/merge.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {dumpDatabase, makeProject, png, tmpDir} from './support/fixtures.js'
import {generationOf, setGeneration, setNotes} from './support/edit.js'

const author = {name: 'Tester', email: 't@example.com'}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p
  } catch (error) {
    expect((error as {code?: string}).code, (error as Error).message).to.equal(code)
    return
  }
  expect.fail(`expected ${code}`)
}

async function originWithClone(): Promise<{a: Workspace; aDb: string; remote: string}> {
  const {dir, db} = makeProject()
  await initRepository({dir})
  const a = await Workspace.open(dir)
  await commit(a, {message: 'first', author})
  const remote = path.join(tmpDir('remote'), 'tiles')
  await addRemote(a.repo, 'origin', remote)
  await push(a, {})
  return {a, aDb: db, remote}
}

async function cloneOf(remote: string): Promise<{ws: Workspace; db: string}> {
  const dir = path.join(tmpDir('clone'), 'c')
  const r = await clone({url: remote, dir})
  return {ws: await Workspace.open(dir), db: path.join(dir, r.database)}
}

describe('directory remote', () => {
  it('push, clone: identical database; second push sends nothing; 3 changed tiles send 3 blobs plus a few trees', async () => {
    const {a, aDb, remote} = await originWithClone()
    const {db: bDb} = await cloneOf(remote)
    expect(dumpDatabase(bDb)).to.deep.equal(dumpDatabase(aDb))
    // The clone's database is built with pages sized for tile images (see CREATED_PAGE_SIZE).
    const pageSize = new Database(bDb, {readonly: true})
    expect(pageSize.pragma('page_size', {simple: true})).to.equal(CREATED_PAGE_SIZE)
    pageSize.close()

    const again = await push(a, {})
    expect(again.upToDate).to.equal(true)
    expect(again.objects).to.equal(0)

    setGeneration(aDb, 0, 0, 101)
    setGeneration(aDb, 1, 0, 102)
    setGeneration(aDb, -2, 1, 103)
    await commit(a, {message: 'three tiles', author})
    const before = countFiles(path.join(remote, 'objects'))
    const r = await push(a, {})
    const added = countFiles(path.join(remote, 'objects')) - before
    expect(r.objects).to.equal(added)
    // 3 blobs + leaves (<= 3) + level-1 nodes + root + table + snapshot + commit
    expect(r.objects).to.be.at.least(3 + 1 + 1 + 1 + 1 + 1 + 1)
    expect(r.objects).to.be.at.most(3 + 3 + 3 + 1 + 1 + 1 + 1)
    const blobsSent = r.bytes
    expect(blobsSent).to.be.greaterThan(png(101).length * 3)
  })

  it('refuses a diverged push, pulls a per-tile merge, and a third clone sees both changes', async () => {
    const {remote} = await originWithClone()
    const b = await cloneOf(remote)
    const c = await cloneOf(remote)
    setGeneration(b.db, 0, 0, 201)
    await commit(b.ws, {message: 'b edits 0,0', author})
    setGeneration(c.db, 1, 1, 301)
    setNotes(c.db, 0, 0, 'note from c')
    await commit(c.ws, {message: 'c edits 1,1 and notes of 0,0', author})
    await push(b.ws, {})
    await expectCode(push(c.ws, {}), 'REMOTE_MOVED')
    const p = await pull(c.ws, {})
    expect(p.merge?.outcome).to.equal('merged')
    expect(generationOf(c.db, 0, 0)).to.deep.equal(png(201))
    expect(generationOf(c.db, 1, 1)).to.deep.equal(png(301))
    expect((await status(c.ws)).clean).to.equal(true)
    await push(c.ws, {})
    const d = await cloneOf(remote)
    expect(dumpDatabase(d.db)).to.deep.equal(dumpDatabase(c.db))
    await pull(b.ws, {})
    expect(dumpDatabase(b.db)).to.deep.equal(dumpDatabase(c.db))
  })

  for (const side of ['theirs', 'ours', 'abort'] as const) {
    it(`a tile changed on both sides is a conflict that --${side} resolves as named`, async () => {
      const {remote} = await originWithClone()
      const b = await cloneOf(remote)
      const c = await cloneOf(remote)
      setGeneration(b.db, 0, 0, 401)
      await commit(b.ws, {message: 'b', author})
      await push(b.ws, {})
      setGeneration(c.db, 0, 0, 501)
      setGeneration(c.db, 2, 2, 502)
      await commit(c.ws, {message: 'c', author})
      const before = dumpDatabase(c.db)
      const p = await pull(c.ws, {})
      expect(p.merge?.outcome).to.equal('conflicts')
      expect(p.merge?.conflicts.map((x) => [x.x, x.y, x.columns])).to.deep.equal([[0, 0, ['generation']]])
      expect(dumpDatabase(c.db)).to.deep.equal(before)
      await expectCode(commit(c.ws, {message: 'x', author}), 'MERGE_IN_PROGRESS')
      if (side === 'abort') {
        await abortMerge(c.ws)
        expect(dumpDatabase(c.db)).to.deep.equal(before)
        expect(fs.existsSync(c.ws.repo.layout.mergeState)).to.equal(false)
        return
      }
      const r = await resolveMerge(c.ws, side, [[0, 0]])
      expect(r.outcome).to.equal('merged')
      expect(generationOf(c.db, 0, 0)).to.deep.equal(png(side === 'theirs' ? 401 : 501))
      expect(generationOf(c.db, 2, 2)).to.deep.equal(png(502))
      await push(c.ws, {})
    })
  }

  it('detects a corrupted object on the remote and writes nothing', async () => {
    const {a, aDb, remote} = await originWithClone()
    setGeneration(aDb, 0, 0, 601)
    await commit(a, {message: 'x', author})
    await push(a, {})
    const b = await cloneOf(remote)
    // Tamper with every object on the remote that b does not have yet.
    setGeneration(aDb, 1, 1, 602)
    await commit(a, {message: 'y', author})
    await push(a, {})
    const blob = path.join(remote, 'objects', ...objectPath(await hashOf(png(602))))
    fs.writeFileSync(blob, Buffer.concat([fs.readFileSync(blob), Buffer.from('tampered')]))
    const before = dumpDatabase(b.db)
    const head = await b.ws.repo.refs.headCommit()
    await expectCode(pull(b.ws, {}), 'OBJECT_CORRUPT')
    expect(dumpDatabase(b.db)).to.deep.equal(before)
    expect(await b.ws.repo.refs.headCommit()).to.equal(head)
    expect(await b.ws.repo.store.has(await hashOf(png(602)))).to.equal(false)
  })
})

function countFiles(dir: string): number {
  let n = 0
  for (const e of fs.readdirSync(dir, {withFileTypes: true, recursive: true})) if (e.isFile()) n++
  return n
}

function objectPath(id: string): [string, string] {
  return [id.slice(0, 2), id.slice(2)]
}

async function hashOf(bytes: Buffer): Promise<string> {
  const {hashBytes} = await import('../src/core/hash.js')
  return hashBytes(bytes)
}

describe('directory remote: more', () => {
  it('push --force overwrites a diverged remote branch; file:// URLs work', async () => {
    const {dir, db} = makeProject()
    await initRepository({dir})
    const a = await Workspace.open(dir)
    await commit(a, {message: 'first', author})
    const remoteDir = path.join(tmpDir('remote'), 'tiles')
    await addRemote(a.repo, 'origin', `file://${remoteDir}`)
    await push(a, {})
    const b = await cloneOf(`file://${remoteDir}`)
    setGeneration(b.db, 3, 3, 701)
    await commit(b.ws, {message: 'b', author})
    await push(b.ws, {})
    setGeneration(db, 2, 2, 702)
    const mine = await commit(a, {message: 'a', author})
    await expectCode(push(a, {}), 'REMOTE_MOVED')
    const forced = await push(a, {force: true})
    expect(forced.to).to.equal(mine.id)
    const c = await cloneOf(remoteDir)
    expect(dumpDatabase(c.db)).to.deep.equal(dumpDatabase(db))
  })

  it('merge REV combines two local branches per tile', async () => {
    const {dir, db} = makeProject()
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    await commit(ws, {message: 'first', author})
    await switchBranch(ws, 'left', {create: true})
    setGeneration(db, 0, 1, 801)
    await commit(ws, {message: 'left', author})
    await switchBranch(ws, 'main')
    setGeneration(db, 1, 0, 802)
    await commit(ws, {message: 'main', author})
    const r = await mergeCommit(ws, await ws.resolve('left'), 'left')
    expect(r.outcome).to.equal('merged')
    expect(generationOf(db, 0, 1)).to.deep.equal(png(801))
    expect(generationOf(db, 1, 0)).to.deep.equal(png(802))
    expect((await ws.reader.commit(r.head!)).parents).to.have.length(2)
    expect((await status(ws)).clean).to.equal(true)
  })
})
