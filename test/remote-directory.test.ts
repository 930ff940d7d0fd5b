import Database from 'better-sqlite3'
import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {hashBytes} from '../src/core/hash.js'
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
import {DirectoryBackend} from '../src/remote/directory-backend.js'
import {Workspace} from '../src/workspace/workspace.js'
import {dumpDatabase, makeProject, png, tmpDir} from './support/fixtures.js'
import {idsStoredAt, tamperStored, TREE_PACK_KEY} from './support/packed-remote.js'
import {runTransportConformance} from './support/transport-conformance.js'
import {generationOf, setGeneration} from './support/edit.js'

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

runTransportConformance('directory', () => ({
  corruptCodes: ['OBJECT_CORRUPT'],
  async newRemote() {
    const root = path.join(tmpDir('remote'), 'tiles')
    const backend = new DirectoryBackend(root)
    // A rename gives a file a new inode: a rewritten object shows as written even with the same name.
    const scan = (): Map<string, number> => {
      const out = new Map<string, number>()
      for (const sub of ['objects', 'packs']) {
        const dir = path.join(root, sub)
        if (!fs.existsSync(dir)) continue
        for (const e of fs.readdirSync(dir, {withFileTypes: true, recursive: true})) {
          if (e.isFile()) out.set(path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'), fs.statSync(path.join(e.parentPath, e.name)).ino)
        }
      }
      return out
    }
    let seen = new Map<string, number>()
    return {
      url: root,
      written: async () => idsStoredAt(backend, [...scan()].filter(([f, ino]) => seen.get(f) !== ino).map(([f]) => f)),
      resetWritten: async () => {
        seen = scan()
      },
      isUploadOf: (entry, blob) => entry === hashBytes(blob),
      interrupt: async () => {
        // The images' pack lands; writing the trees' pack fails (the disk of a shared drive went away).
        const put = DirectoryBackend.prototype.put
        DirectoryBackend.prototype.put = async function (this: DirectoryBackend, key: string, bytes: Buffer) {
          if (TREE_PACK_KEY.test(key)) throw Object.assign(new Error(`EIO: i/o error, write '${key}' (injected)`), {code: 'EIO'})
          return put.call(this, key, bytes)
        }
        return async () => {
          DirectoryBackend.prototype.put = put
        }
      },
      tamper: (blob, how) => tamperStored(backend, blob, how),
    }
  },
}))

describe('directory remote', () => {
  it('a clone\'s database has pages sized for tile images', async () => {
    const {remote} = await originWithClone()
    const {db: bDb} = await cloneOf(remote)
    const pageSize = new Database(bDb, {readonly: true})
    expect(pageSize.pragma('page_size', {simple: true})).to.equal(CREATED_PAGE_SIZE)
    pageSize.close()
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
})




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
