import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import {checkout} from '../src/ops/checkout.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {fetchRemote} from '../src/ops/fetch.js'
import {fsckLocal} from '../src/ops/fsck.js'
import {initRepository} from '../src/ops/init.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {CRASH_OPS, runCrashTrials} from '../src/torture/crash-trials.js'
import {cli, REPO_ROOT} from './support/cli.js'
import {setGeneration, setNotes} from './support/edit.js'
import {DB_REL, dumpDatabase, makeProject, tmpDir} from './support/fixtures.js'

const author = {name: 'T', email: 't@x'}
/** CI-sized; `npm run torture` runs the same trials with many more kills. */
const TRIALS = Number(process.env.TILESYNC_CRASH_TRIALS ?? 30)

describe('crash safety: kill -9 at random moments', function () {
  this.timeout(180_000)
  const work = tmpDir('crash')

  for (const op of CRASH_OPS) {
    it(`${op}: ${TRIALS} kills leave fsck clean, the database before or after, refs on complete commits, and the command re-runnable`, async () => {
      const r = await runCrashTrials(op, {trials: TRIALS, workDir: work, seed: 1000 + CRASH_OPS.indexOf(op), cliRerunEvery: 10, parallel: 2})
      console.log(`      ${op}: ${r.trials} trials (${(r.ms / 1000).toFixed(1)} s): killed before the change ${r.outcomes.before}, after it ${r.outcomes.after}, finished first ${r.outcomes.completed}; killed while working ${r.killedMidWork}; CLI re-runs ${r.cliReruns}`)
      expect(r.failures).to.deep.equal([])
      expect(r.trials).to.equal(TRIALS)
      expect(r.outcomes.before + r.outcomes.after + r.outcomes.completed).to.equal(TRIALS)
    })
  }
})

/**
 * The database is written in one SQLite transaction and a ref moves in a file: a crash can
 * fall between the two. These put a repository in exactly that state and run the command again.
 */
describe('crash safety: between the database write and the ref update', () => {
  async function twoCommits(): Promise<{ws: Workspace; dir: string; db: string; a: string; b: string}> {
    const {dir, db} = makeProject()
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    const a = (await commit(ws, {message: 'a', author})).id!
    setGeneration(db, 0, 0, 501)
    setNotes(db, 1, 1, 'b')
    const b = (await commit(ws, {message: 'b', author})).id!
    return {ws, dir, db, a, b}
  }

  it('checkout: database already at the target, HEAD behind: running it again just moves HEAD', async () => {
    const {ws, db, a, b} = await twoCommits()
    await checkout(ws, {revision: a})
    const atA = dumpDatabase(db)
    await ws.repo.refs.setHead({kind: 'branch', ref: 'refs/heads/main', branch: 'main'}, 'test: HEAD as a crash left it')
    expect(await ws.repo.refs.headCommit()).to.equal(b)
    const r = await checkout(ws, {revision: a})
    expect(r.savedAs).to.equal(null)
    expect(r.rowsWritten + r.rowsDeleted).to.equal(0)
    expect(await ws.repo.refs.headCommit()).to.equal(a)
    expect(dumpDatabase(db)).to.deep.equal(atA)
    expect((await status(ws)).clean).to.equal(true)
    // Real uncommitted work is still protected.
    setNotes(db, 2, 2, 'mine')
    await checkout(ws, {revision: b}).then(() => expect.fail('expected DIRTY'), (e: {code?: string}) => expect(e.code).to.equal('DIRTY'))
  })

  async function cloneBehind(): Promise<{ws: Workspace; other: Workspace; remote: string; db: string; otherDb: string}> {
    const {ws, db} = await twoCommits()
    const remote = path.join(tmpDir(), 'remote')
    await addRemote(ws.repo, 'origin', remote)
    await push(ws, {remote: 'origin', branch: 'main'})
    const otherDir = path.join(tmpDir(), 'other')
    await clone({url: remote, dir: otherDir})
    setGeneration(db, -1, -1, 777)
    await commit(ws, {message: 'c', author})
    await push(ws, {remote: 'origin', branch: 'main'})
    return {ws, other: await Workspace.open(otherDir), remote, db, otherDb: path.join(otherDir, DB_REL)}
  }

  it('pull (fast-forward): database already at theirs, HEAD behind: running it again moves HEAD', async () => {
    const {ws, other, db, otherDb} = await cloneBehind()
    const before = await other.repo.refs.headCommit()
    await fetchRemote(other, {remote: 'origin'})
    await checkout(other, {revision: 'origin/main'})
    await other.repo.refs.setHead({kind: 'branch', ref: 'refs/heads/main', branch: 'main'}, 'test: HEAD as a crash left it')
    expect(await other.repo.refs.headCommit()).to.equal(before)
    const r = await pull(other, {remote: 'origin', branch: 'main'})
    expect(r.merge?.outcome).to.equal('fast-forward')
    expect(await other.repo.refs.headCommit()).to.equal(await ws.repo.refs.headCommit())
    expect(dumpDatabase(otherDb)).to.deep.equal(dumpDatabase(db))
    expect((await fsckLocal(other)).ok).to.equal(true)
  })

  it('pull (merge commit): database already merged, HEAD behind: running it again makes the merge commit without writing', async () => {
    const {other, otherDb} = await cloneBehind()
    setNotes(otherDb, 2, 2, 'theirs-side edit')
    await commit(other, {message: 'local', author})
    const before = await other.repo.refs.headCommit()
    // What the whole pull gives, made in a copy; then only its database is put in place.
    const copy = path.join(tmpDir(), 'copy')
    fs.cpSync(other.repo.root, copy, {recursive: true})
    const merged = await pull(await Workspace.open(copy), {remote: 'origin', branch: 'main'})
    expect(merged.merge?.outcome).to.equal('merged')
    fs.copyFileSync(path.join(copy, DB_REL), otherDb)
    await fetchRemote(other, {remote: 'origin'})
    const r = await pull(other, {remote: 'origin', branch: 'main'})
    expect(r.merge?.outcome).to.equal('merged')
    expect(r.merge?.rowsWritten).to.equal(0)
    const head = await other.repo.refs.headCommit()
    expect((await other.reader.commit(head!)).parents[0]).to.equal(before)
    expect((await status(other, {rescan: true})).clean).to.equal(true)
  })

  it('a push killed while it held a directory remote\'s branch lock: the next push takes the lock over at once', async () => {
    const {ws, db} = await twoCommits()
    const remote = path.join(tmpDir(), 'remote')
    await addRemote(ws.repo, 'origin', remote)
    await push(ws, {remote: 'origin', branch: 'main'})
    const lock = path.join(remote, 'refs', 'heads', 'main.lock')
    // Left by a process of this machine that no longer exists.
    fs.writeFileSync(lock, `2147483646 ${os.hostname()}\n`)
    setGeneration(db, 2, 2, 3131)
    await commit(ws, {message: 'c', author})
    const start = Date.now()
    await push(ws, {remote: 'origin', branch: 'main'})
    expect(Date.now() - start).to.be.below(5_000)
    // Left long ago by another machine.
    fs.writeFileSync(lock, '4242 another-host\n')
    const old = new Date(Date.now() - 120_000)
    fs.utimesSync(lock, old, old)
    setGeneration(db, 2, 2, 3232)
    await commit(ws, {message: 'd', author})
    await push(ws, {remote: 'origin', branch: 'main'})
    expect(fs.existsSync(lock)).to.equal(false)
    expect(fs.readdirSync(path.join(remote, 'refs', 'heads'))).to.deep.equal(['main'])
  })

  it('a writer killed inside a transaction leaves a hot journal: read-only commands still work and see the last commit', async () => {
    const {dir, db} = makeProject()
    spawnSync('sqlite3', [db, 'PRAGMA journal_mode = DELETE;'])
    expect(cli(dir, ['init']).code).to.equal(0)
    expect(cli(dir, ['commit', '-m', 'base']).code).to.equal(0)
    const before = dumpDatabase(db)
    // A pipeline process dies half-way through a big write (its pages already spilled to the file).
    const killer = `
      const Database = require(${JSON.stringify(path.join(REPO_ROOT, 'node_modules', 'better-sqlite3'))})
      const db = new Database(${JSON.stringify(db)})
      db.pragma('cache_size = 5')
      db.exec('BEGIN IMMEDIATE')
      for (let i = 0; i < 3000; i++) db.prepare('INSERT INTO metadata (key, value) VALUES (?, ?)').run('k' + i, 'x'.repeat(200))
      db.exec("UPDATE quadrants SET notes = 'half-written'")
      process.kill(process.pid, 'SIGKILL')`
    spawnSync(process.execPath, ['-e', killer])
    expect(fs.existsSync(`${db}-journal`)).to.equal(true)
    const st = cli(dir, ['status'])
    expect(st.code, st.stderr).to.equal(0)
    expect(st.stdout).to.include('Nothing to commit')
    expect(dumpDatabase(db)).to.deep.equal(before)
  })
})
