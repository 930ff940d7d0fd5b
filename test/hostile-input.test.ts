import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'

import {hashBytes} from '../src/core/hash.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {Workspace} from '../src/workspace/workspace.js'
import {remoteKeys} from '../src/remote/object-store/remote-store.js'
import {cli, type CliRun, REPO_ROOT} from './support/cli.js'
import {setGeneration, setNotes} from './support/edit.js'
import {DB_REL, makeProject, png, tmpDir, withDb} from './support/fixtures.js'

/**
 * Hostile and broken input: each case is refused with one clear line and changes nothing
 * (the database file and every ref are compared before and after). Hostile paths in dataset
 * folders and malformed CSV are covered by test/dataset.test.ts (HOSTILE_PATH, BAD_DATASET).
 */

const author = {name: 'H', email: 'h@example.com'}

/** Everything a refused command must leave alone: the database's bytes, HEAD, refs, reflogs. */
function stateOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const db = path.join(dir, DB_REL)
  for (const f of [db, `${db}-wal`]) if (fs.existsSync(f)) out[path.basename(f)] = createHash('sha256').update(fs.readFileSync(f)).digest('hex')
  const store = path.join(dir, '.tilesync')
  for (const sub of ['HEAD', 'refs', 'logs', 'shallow', 'MERGE_STATE.json']) {
    const p = path.join(store, sub)
    if (!fs.existsSync(p)) continue
    if (fs.statSync(p).isFile()) out[sub] = fs.readFileSync(p, 'utf8')
    else for (const f of fs.readdirSync(p, {recursive: true, withFileTypes: true})) if (f.isFile()) out[path.relative(store, path.join(f.parentPath, f.name))] = fs.readFileSync(path.join(f.parentPath, f.name), 'utf8')
  }
  return out
}

/** A refusal: exit 1 and exactly one line on stderr, naming the problem (and the code under --json). */
function expectRefused(r: CliRun, pattern: RegExp): void {
  expect(r.code, r.stdout + r.stderr).to.equal(1)
  const lines = r.stderr.split('\n').filter(Boolean)
  expect(lines, r.stderr).to.have.length(1)
  expect(lines[0]).to.match(/^tilesync: /)
  expect(lines[0]).to.match(pattern)
}

async function twoCommits(): Promise<{dir: string; db: string; ws: Workspace}> {
  const {dir, db} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'one', author})
  setGeneration(db, 0, 0, 61)
  setNotes(db, 1, 1, 'two')
  await commit(ws, {message: 'two', author})
  return {dir, db, ws}
}

async function withRemote(): Promise<{dir: string; db: string; ws: Workspace; remote: string}> {
  const p = await twoCommits()
  const remote = path.join(tmpDir('remote'), 'r')
  await addRemote(p.ws.repo, 'origin', remote)
  await push(p.ws, {})
  return {...p, remote}
}

describe('hostile input: refused in one line, nothing changed', function () {
  this.timeout(60_000)

  it('a truncated database and a file that is not SQLite, on commit and status', async () => {
    const {dir, db} = await twoCommits()
    const good = fs.readFileSync(db)
    for (const bad of [good.subarray(0, 50), Buffer.from('a CSV file, not a database\n'.repeat(20)), Buffer.concat([good.subarray(0, 4096), randomBytes(4096)])]) {
      fs.writeFileSync(db, bad)
      const before = stateOf(dir)
      for (const args of [['commit', '-m', 'x'], ['status'], ['checkout', 'HEAD~1']]) {
        // A file with a good first page and garbage after it reads as damaged (DB_CORRUPT).
        expectRefused(cli(dir, args), /is not (a|a valid) SQLite database|the database .* is damaged .*checkout HEAD --into/)
        expect(stateOf(dir)).to.deep.equal(before)
      }
    }
  })

  it('a database held by a long write transaction in another process: DB_LOCKED, no commit, no checkout', async () => {
    const {dir, db} = await twoCommits()
    for (const mode of ['WAL', 'DELETE']) {
      withDb(db, (d) => d.pragma(`journal_mode = ${mode}`))
      setNotes(db, 2, 2, `uncommitted in ${mode} mode`)
      const before = stateOf(dir)
      // Another process (a pipeline run) in the middle of a write transaction.
      const holder = spawn(process.execPath, ['-e', `
        const Database = require(${JSON.stringify(path.join(REPO_ROOT, 'node_modules', 'better-sqlite3'))})
        const db = new Database(${JSON.stringify(db)})
        db.exec('BEGIN IMMEDIATE')
        db.prepare("UPDATE quadrants SET notes = 'held' WHERE quadrant_x = 0 AND quadrant_y = 0").run()
        process.stdout.write('ready\\n')
        process.stdin.on('end', () => { db.exec('ROLLBACK'); process.exit(0) })
        process.stdin.resume()`], {stdio: ['pipe', 'pipe', 'inherit']})
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()))
      try {
        const env = {TILESYNC_BUSY_TIMEOUT_MS: '200'}
        const c = cli(dir, ['commit', '-m', 'while locked'], env)
        // WAL lets a commit read what is committed; if it says it committed, the commit exists,
        // and if it says it could not, nothing moved.
        if (c.code === 0) expect(stateOf(dir), c.stdout).to.not.deep.equal(before)
        else {
          expectRefused(c, /is locked by another process .*nothing was changed/)
          expect(stateOf(dir)).to.deep.equal(before)
        }
        const after = stateOf(dir)
        expectRefused(cli(dir, ['checkout', 'HEAD~1', '--force'], env), /is locked by another process/)
        expect(stateOf(dir)).to.deep.equal(after)
      } finally {
        holder.stdin.end()
        await new Promise((resolve) => holder.once('exit', resolve))
      }
    }
  })

  it('a tile table with no key is refused by init, which creates nothing', () => {
    const dir = tmpDir()
    withDb(path.join(dir, 'x.db'), (d) => d.exec('CREATE TABLE tiles (x INTEGER, y INTEGER, img BLOB)'))
    expectRefused(cli(dir, ['init', '--db', 'x.db']), /no (primary )?key|--key/i)
    expect(fs.existsSync(path.join(dir, '.tilesync'))).to.equal(false)
  })

  it('local objects with the wrong hash or truncated: checkout, diff and show refuse; fsck names them', async () => {
    const {dir, ws} = await twoCommits()
    const first = await ws.resolve('HEAD~1')
    const tree = (await ws.reader.commit(first)).tree
    const snap = await ws.reader.snapshot(tree)
    const table = snap.tables.find((t) => t.name === 'quadrants')!.id
    for (const damage of ['flip', 'truncate'] as const) {
      const file = ws.repo.store.pathOf(table)
      const good = fs.readFileSync(file)
      fs.writeFileSync(file, damage === 'flip' ? Buffer.concat([good.subarray(0, 10), Buffer.from([good[10] ^ 0xff]), good.subarray(11)]) : good.subarray(0, good.length >> 1))
      const before = stateOf(dir)
      expectRefused(cli(dir, ['checkout', 'HEAD~1']), new RegExp(`object ${table} is corrupt`))
      expectRefused(cli(dir, ['diff', 'HEAD~1']), /is corrupt/)
      expect(stateOf(dir)).to.deep.equal(before)
      const f = cli(dir, ['fsck'])
      expect(f.code).to.equal(1)
      expect(f.stdout).to.include(`table tree ${table.slice(0, 10)} (table quadrants at commit ${first.slice(0, 10)}) is corrupt`)
      fs.writeFileSync(file, good)
    }
  })

  it('remote objects with the wrong hash or truncated: clone, pull and fetch refuse; fsck --remote names them', async () => {
    const {ws, remote} = await withRemote()
    // The other side moves on, then one of its new objects is damaged on the remote.
    const other = path.join(tmpDir('clone'), 'c')
    expect(cli(path.dirname(other), ['clone', remote, other]).code).to.equal(0)
    setGeneration(path.join(ws.repo.root, DB_REL), 3, 3, 4242)
    await commit(ws, {message: 'three', author})
    await push(ws, {})
    const blob = hashBytes(png(4242))
    const key = path.join(remote, ...remoteKeys.object(blob).split('/'))
    const good = fs.readFileSync(key)
    for (const bad of [Buffer.concat([good.subarray(0, 40), Buffer.from('tampered'), good.subarray(48)]), good.subarray(0, 100)]) {
      fs.writeFileSync(key, bad)
      const target = path.join(tmpDir('clone'), 'fresh')
      expectRefused(cli(path.dirname(target), ['clone', remote, target]), new RegExp(`object ${blob} from remote "origin" is corrupt`))
      expect(fs.existsSync(target)).to.equal(false)
      const before = stateOf(other)
      expectRefused(cli(other, ['pull']), /is corrupt/)
      expectRefused(cli(other, ['fetch']), /is corrupt/)
      expect(stateOf(other)).to.deep.equal(before)
      const f = cli(other, ['fsck', '--remote', 'origin'])
      expect(f.code).to.equal(1)
      expect(f.stdout).to.match(new RegExp(`object ${blob.slice(0, 10)} \\(tile 3,3 generation at commit [0-9a-f]{10}\\) is corrupt .* on origin`))
    }
    // The clone that has it puts it back.
    expect(cli(ws.repo.root, ['fsck', '--remote', 'origin', '--repair']).code).to.equal(0)
    expect(cli(other, ['pull']).code).to.equal(0)
  })

  it('a remote branch pointing at a commit the remote does not have', async () => {
    const {remote, dir} = await withRemote()
    const other = path.join(tmpDir('clone'), 'c')
    expect(cli(path.dirname(other), ['clone', remote, other]).code).to.equal(0)
    const ghost = hashBytes(Buffer.from('no such commit'))
    fs.writeFileSync(path.join(remote, 'refs', 'heads', 'main'), `${ghost}\n`)
    const target = path.join(tmpDir('clone'), 'fresh')
    expectRefused(cli(path.dirname(target), ['clone', remote, target]), new RegExp(`object ${ghost} is missing on remote "origin"`))
    expect(fs.existsSync(target)).to.equal(false)
    const before = stateOf(other)
    expectRefused(cli(other, ['pull']), /is missing on remote/)
    expect(stateOf(other)).to.deep.equal(before)
    const f = cli(dir, ['fsck', '--remote', 'origin'])
    expect(f.code).to.equal(1)
    expect(f.stdout).to.include(`branch main on origin points at commit ${ghost.slice(0, 10)}, which is not complete there`)
    // A ref that is not an id at all.
    fs.writeFileSync(path.join(remote, 'refs', 'heads', 'main'), '../../etc/passwd\n')
    expectRefused(cli(other, ['fetch']), /damaged ref main/)
    expect(stateOf(other)).to.deep.equal(before)
  })

  it('invalid revision strings', async () => {
    const {dir} = await twoCommits()
    const before = stateOf(dir)
    const bad: Array<[string, RegExp]> = [
      ['../../etc/passwd', /unknown revision|not a valid revision/],
      ['refs/../../HEAD', /unknown revision|not a valid revision/],
      ['HEAD~99999999', /goes back past the first commit/],
      ['HEAD^3', /has 1 parent/],
      ['HEAD@{999}', /reflog of HEAD has \d+ entr/],
      ['HEAD@{-1}', /not a valid revision|unknown revision/],
      ['x'.repeat(300), /not a valid revision/],
      ['main~~^^~3x', /not a valid revision|unknown revision/],
      ['abc', /unknown revision/],
      ['ffff', /unknown revision/],
      ['HEAD\u0000', /not a valid revision|unknown revision/],
      ['$(touch pwned)', /not a valid revision|unknown revision/],
    ]
    for (const [i, [rev, pattern]] of bad.entries()) {
      // Every string through checkout; each through one of the other readers of revisions too.
      for (const cmd of [['checkout', rev], [['diff', 'show', 'log'][i % 3], rev]]) {
        if (rev.includes('\u0000')) continue
        expectRefused(cli(dir, cmd), pattern)
      }
    }
    expect(fs.existsSync(path.join(dir, 'pwned'))).to.equal(false)
    expect(stateOf(dir)).to.deep.equal(before)
  })

  it('a full disk while writing objects: commit and pull stop with DISK_FULL, nothing moves, no temp files; later they work', async () => {
    const {dir, db, ws, remote} = await withRemote()
    for (let i = 0; i < 12; i++) setGeneration(db, (i % 6) - 3, Math.floor(i / 6), 7000 + i)
    const before = stateOf(dir)
    const full = {TILESYNC_TEST_DISK_FULL_AFTER_BYTES: '3000'}
    expectRefused(cli(dir, ['commit', '-m', 'big'], full), /no space left on the disk .*nothing was changed/)
    expect(stateOf(dir)).to.deep.equal(before)
    expect(fs.readdirSync(ws.repo.layout.tmp)).to.deep.equal([])
    expect(cli(dir, ['fsck']).code).to.equal(0)
    expect(cli(dir, ['commit', '-m', 'big']).code).to.equal(0)
    expect(cli(dir, ['push']).code).to.equal(0)

    const other = path.join(tmpDir('clone'), 'c')
    expect(cli(path.dirname(other), ['clone', remote, other, '--branch', 'main']).code).to.equal(0)
    setGeneration(db, 2, 2, 9999)
    expect(cli(dir, ['commit', '-m', 'more']).code).to.equal(0)
    expect(cli(dir, ['push']).code).to.equal(0)
    const otherBefore = stateOf(other)
    expectRefused(cli(other, ['pull'], {TILESYNC_TEST_DISK_FULL_AFTER_BYTES: '100'}), /no space left on the disk/)
    expect(stateOf(other)).to.deep.equal(otherBefore)
    expect(fs.readdirSync(path.join(other, '.tilesync', 'tmp'))).to.deep.equal([])
    expect(cli(other, ['fsck']).code).to.equal(0)
    expect(cli(other, ['pull']).code).to.equal(0)
    const fresh = path.join(tmpDir('clone'), 'full-disk-clone')
    expectRefused(cli(path.dirname(fresh), ['clone', remote, fresh], {TILESYNC_TEST_DISK_FULL_AFTER_BYTES: '2000'}), /no space left on the disk/)
    expect(fs.existsSync(fresh)).to.equal(false)
  })

  it('an S3 endpoint that accepts connections and never answers: push, fetch and clone give up in one line', async () => {
    const sockets: net.Socket[] = []
    const server = net.createServer((s) => {
      sockets.push(s)
      s.on('error', () => {})
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    const endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
    try {
      const {dir} = await twoCommits()
      const env = {AWS_ACCESS_KEY_ID: 'hang-key', AWS_SECRET_ACCESS_KEY: 'hang-secret', TILESYNC_REMOTE_TIMEOUT_MS: '300', TILESYNC_REMOTE_RETRIES: '2'}
      expect(cli(dir, ['remote', 'add', 'hang', 's3://bucket/tiles', '--endpoint', endpoint]).code).to.equal(0)
      const before = stateOf(dir)
      for (const args of [['push', 'hang', 'main'], ['fetch', 'hang']]) {
        const start = Date.now()
        expectRefused(cli(dir, args, env), /no answer from .* within 300 ms/)
        expect(Date.now() - start).to.be.below(20_000)
      }
      expect(stateOf(dir)).to.deep.equal(before)
      const target = path.join(tmpDir('clone'), 'c')
      expectRefused(cli(path.dirname(target), ['clone', 's3://bucket/tiles', target, '--endpoint', endpoint], env), /no answer from .* within 300 ms/)
      expect(fs.existsSync(target)).to.equal(false)
    } finally {
      for (const s of sockets) s.destroy()
      server.close()
    }
  })
})
