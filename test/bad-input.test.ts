import {expect} from 'chai'
import Database from 'better-sqlite3'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {hashBytes} from '../src/core/hash.js'
import {checkout} from '../src/ops/checkout.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {DB_REL, dumpDatabase, makeProject, png, tmpDir, withDb} from './support/fixtures.js'
import {setGeneration} from './support/edit.js'

const author = {name: 'T', email: 't@x'}

export async function expectCode(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p
  } catch (error) {
    expect((error as {code?: string}).code, (error as Error).message).to.equal(code)
    return error as Error
  }
  return expect.fail(`expected ${code}`)
}

async function repoWithTwoCommits(): Promise<{ws: Workspace; db: string; dir: string}> {
  const {dir, db} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'one', author})
  setGeneration(db, 0, 0, 77)
  await commit(ws, {message: 'two', author})
  return {ws, db, dir}
}

describe('bad input is refused cleanly', () => {
  it('not a SQLite file, truncated file, missing database', async () => {
    const dir = tmpDir()
    fs.mkdirSync(path.join(dir, 'generations/v01'), {recursive: true})
    fs.writeFileSync(path.join(dir, DB_REL), 'hello, this is a text file and not a database at all'.repeat(5))
    await expectCode(initRepository({dir}), 'NOT_SQLITE')
    const {db} = makeProject()
    const bytes = fs.readFileSync(db)
    fs.writeFileSync(path.join(dir, DB_REL), bytes.subarray(0, 50))
    await expectCode(initRepository({dir}), 'NOT_SQLITE')
    await expectCode(initRepository({dir, db: 'nope.db'}), 'DB_MISSING')
    expect(fs.existsSync(path.join(dir, '.tilesync'))).to.equal(false)
  })

  it('missing tile table, and a tile table with no key unless one is given', async () => {
    const dir = tmpDir()
    const file = path.join(dir, 'x.db')
    withDb(file, (d) => d.exec('CREATE TABLE other (a TEXT); CREATE TABLE tiles (x INTEGER, y INTEGER, img BLOB)'))
    await expectCode(initRepository({dir, db: 'x.db', table: 'quadrants'}), 'TABLE_MISSING')
    await expectCode(initRepository({dir, db: 'x.db'}), 'NO_KEY')
    const r = await initRepository({dir, db: 'x.db', key: ['x', 'y']})
    expect(r.tileTable).to.equal('tiles')
    expect(r.imageColumns).to.deep.equal(['img'])
  })

  it('unknown, ambiguous-free, malformed and out-of-range revisions', async () => {
    const {ws} = await repoWithTwoCommits()
    await expectCode(ws.resolve('nope'), 'UNKNOWN_REVISION')
    await expectCode(ws.resolve('HEAD~99'), 'REVISION_OUT_OF_RANGE')
    await expectCode(ws.resolve('HEAD^^^'), 'REVISION_OUT_OF_RANGE')
    await expectCode(ws.resolve('a..b'), 'UNKNOWN_REVISION')
    await expectCode(ws.resolve('~~'), 'BAD_REVISION')
    await expectCode(ws.resolve('HEAD@{9}'), 'REVISION_OUT_OF_RANGE')
    await expectCode(ws.resolve('ffff'), 'UNKNOWN_REVISION')
    const head = (await ws.repo.refs.headCommit())!
    expect(await ws.resolve(head.slice(0, 6))).to.equal(head)
    expect(await ws.resolve('HEAD^')).to.equal(await ws.resolve('HEAD~1'))
    expect(await ws.resolve('main~1')).to.equal(await ws.resolve('HEAD~'))
  })

  it('checkout over uncommitted changes is refused; --force saves them first', async () => {
    const {ws, db} = await repoWithTwoCommits()
    setGeneration(db, 1, 1, 88)
    const dirty = dumpDatabase(db)
    await expectCode(checkout(ws, {revision: 'HEAD~1'}), 'DIRTY')
    expect(dumpDatabase(db)).to.deep.equal(dirty)
    const r = await checkout(ws, {revision: 'HEAD~1', force: true})
    expect(r.savedAs).to.be.a('string')
    expect((await status(ws)).clean).to.equal(true)
    await checkout(ws, {revision: r.savedAs!})
    expect(dumpDatabase(db)).to.deep.equal(dirty)
  })

  it('a corrupted object in the local store is detected and the database is not written', async () => {
    const {ws, db} = await repoWithTwoCommits()
    const id = hashBytes(png(77))
    const file = ws.repo.store.pathOf(id)
    const before = dumpDatabase(db)
    // Flip bytes of the blob checkout HEAD~1 -> HEAD would need after going back.
    await checkout(ws, {revision: 'HEAD~1'})
    const atOne = dumpDatabase(db)
    fs.chmodSync(file, 0o644)
    const bytes = fs.readFileSync(file)
    bytes[bytes.length - 5] ^= 0xff
    fs.writeFileSync(file, bytes)
    const err = await expectCode(checkout(ws, {revision: 'main'}), 'OBJECT_CORRUPT')
    expect(err.message).to.contain(id)
    expect(dumpDatabase(db)).to.deep.equal(atOne)
    expect(before).to.not.deep.equal(atOne)
  })

  it('a database locked by another writer fails with DB_LOCKED and is untouched', async () => {
    const {ws, db} = await repoWithTwoCommits()
    process.env.TILESYNC_BUSY_TIMEOUT_MS = '200'
    const holder = new Database(db)
    try {
      holder.exec('BEGIN EXCLUSIVE')
      await expectCode(checkout(ws, {revision: 'HEAD~1'}), 'DB_LOCKED')
      await expectCode(status(ws), 'DB_LOCKED')
      holder.exec('ROLLBACK')
    } finally {
      holder.close()
      delete process.env.TILESYNC_BUSY_TIMEOUT_MS
    }
    expect((await status(ws)).clean).to.equal(true)
  })
})
