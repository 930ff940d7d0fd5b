import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import * as path from 'node:path'

import {isAncestor} from '../src/history/graph.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {fetchRemote} from '../src/ops/fetch.js'
import {fsckLocal, fsckRemote} from '../src/ops/fsck.js'
import {initRepository} from '../src/ops/init.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {Workspace} from '../src/workspace/workspace.js'
import type {RemoteConfig} from '../src/repo/config.js'
import {BIN} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {DB_REL, makeProject, tmpDir} from './support/fixtures.js'
import {S3RVER_KEY, startS3Server, type S3TestServer} from './support/s3-server.js'

const WORKERS = 4
const ROUNDS = Number(process.env.TILESYNC_CONCURRENCY_ROUNDS ?? 3)
const MAX_ATTEMPTS = 15

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** The CLI as its own process, not waiting synchronously: several run at the same time. */
function run(cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd, env: {...process.env, TILESYNC_NO_PROGRESS: '1', ...env}})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    // 'close', not 'exit': only then has all of the child's output been read.
    child.on('close', (code) => resolve({code: code ?? -1, stdout, stderr}))
  })
}

interface WorkerLog {
  /** Commits this worker made and was told were pushed (push exit 0 with them in its branch). */
  pushed: string[]
  /** Pushes refused because the remote moved. */
  refused: number
  /** Refusals that did not say REMOTE_MOVED / "pull first", pulls that failed: must stay empty. */
  unexpected: string[]
}

/**
 * One process per clone, committing and pushing in a loop; a refused push is followed by
 * pull and push again, as a user would do.
 */
async function worker(i: number, dir: string, env: NodeJS.ProcessEnv): Promise<WorkerLog> {
  const out: WorkerLog = {pushed: [], refused: 0, unexpected: []}
  const db = path.join(dir, DB_REL)
  const mine: string[] = []
  for (let r = 0; r < ROUNDS; r++) {
    // Each worker its own tiles, so every pull merges without conflicts.
    setGeneration(db, i - 2, r % 5 - 2, 10_000 + i * 100 + r)
    const c = await run(dir, ['commit', '-m', `worker ${i} round ${r}`, '--json'], {...env, TILESYNC_AUTHOR_NAME: `w${i}`, TILESYNC_AUTHOR_EMAIL: `w${i}@example.com`})
    if (c.code !== 0) {
      out.unexpected.push(`commit: ${c.stdout}${c.stderr}`)
      continue
    }
    mine.push((JSON.parse(c.stdout) as {id: string}).id)
    for (let attempt = 1; ; attempt++) {
      const p = await run(dir, ['push', '--json'], env)
      if (p.code === 0) {
        out.pushed.push(...mine.splice(0))
        break
      }
      let err: {code: string; message: string}
      try {
        err = (JSON.parse(p.stdout) as {error: {code: string; message: string}}).error
      } catch {
        err = {code: `exit ${p.code}`, message: `no JSON error on stdout: ${p.stdout}${p.stderr}`}
      }
      if (err.code !== 'REMOTE_MOVED' || !err.message.includes('pull first')) out.unexpected.push(`push: ${err.code} ${err.message}`)
      else out.refused++
      if (attempt >= MAX_ATTEMPTS) {
        out.unexpected.push(`push still refused after ${attempt} attempts`)
        break
      }
      const pl = await run(dir, ['pull', '--json'], {...env, TILESYNC_AUTHOR_NAME: `w${i}`, TILESYNC_AUTHOR_EMAIL: `w${i}@example.com`})
      if (pl.code !== 0) out.unexpected.push(`pull: ${pl.stdout}${pl.stderr}`)
    }
  }
  return out
}

async function raceOn(url: string, remote: Omit<RemoteConfig, 'url'>, env: NodeJS.ProcessEnv): Promise<void> {
  const {dir} = makeProject()
  await initRepository({dir})
  const origin = await Workspace.open(dir)
  await commit(origin, {message: 'base', author: {name: 'base', email: 'b@example.com'}})
  await addRemote(origin.repo, 'origin', url, remote)
  await push(origin, {})
  const clones: string[] = []
  for (let i = 0; i < WORKERS; i++) {
    const d = path.join(tmpDir('worker'), `w${i}`)
    await clone({url, dir: d, remote})
    clones.push(d)
  }
  const started = Date.now()
  const logs = await Promise.all(clones.map((d, i) => worker(i, d, env)))
  const unexpected = logs.flatMap((l) => l.unexpected)
  expect(unexpected).to.deep.equal([])
  const pushed = logs.flatMap((l) => l.pushed)
  const refused = logs.reduce((s, l) => s + l.refused, 0)
  console.log(`      ${WORKERS} processes x ${ROUNDS} rounds in ${((Date.now() - started) / 1000).toFixed(1)} s: ${pushed.length} commits pushed, ${refused} pushes refused with REMOTE_MOVED then pulled and pushed again`)
  expect(pushed).to.have.length(WORKERS * ROUNDS)
  // Racing pushes: losers were told to pull first (4 processes pushing at once cannot all win).
  expect(refused).to.be.greaterThan(0)
  // Every commit any process was told had been pushed is in the branch's final history.
  await fetchRemote(origin, {remote: 'origin'})
  const tip = (await origin.repo.refs.read('refs/remotes/origin/main'))!
  for (const id of pushed) expect(await isAncestor(origin.reader, id, tip), `${id} is in the final history`).to.equal(true)
  const r = await fsckRemote(origin, 'origin')
  expect(r.ok, JSON.stringify(r.problems)).to.equal(true)
  expect((await fsckLocal(origin)).ok).to.equal(true)
}

describe('concurrent writers: 4 processes committing and pushing to one remote', function () {
  this.timeout(240_000)

  it('directory remote: every acknowledged push is in the final history; losers pulled and pushed again', async () => {
    await raceOn(path.join(tmpDir('remote'), 'shared'), {}, {})
  })

  describe('S3 remote (s3rver behind a compare-and-swap front)', () => {
    let server: S3TestServer
    before(async () => {
      server = await startS3Server({buckets: ['race']})
    })
    after(async () => {
      await server?.stop()
    })

    it('every acknowledged push is in the final history; losers pulled and pushed again', async () => {
      const env = {AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: 'race-secret'}
      const saved = {id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY}
      Object.assign(process.env, env)
      try {
        await raceOn(`s3://race/r-${randomBytes(4).toString('hex')}`, {endpoint: server.endpoint}, env)
      } finally {
        if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID
        else process.env.AWS_ACCESS_KEY_ID = saved.id
        if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY
        else process.env.AWS_SECRET_ACCESS_KEY = saved.secret
      }
    })
  })
})
