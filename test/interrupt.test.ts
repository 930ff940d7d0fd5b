import {expect} from 'chai'
import {spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {Workspace} from '../src/workspace/workspace.js'
import {BIN, cli, cliJson} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {makeProject, tmpDir, withDb} from './support/fixtures.js'

/** A project whose first commit takes seconds: 3,000 extra tiles with 2 x 40 KB of random bytes each. */
function bigProject(): {dir: string; db: string} {
  const p = makeProject()
  withDb(p.db, (d) => {
    d.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2999)
      INSERT INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, render, generation)
      SELECT 100 + i % 60, 100 + i / 60, 0, 0, 0, 0, 0, randomblob(40000), randomblob(40000) FROM n`)
  })
  return p
}

/** Unfinished packs (no index) and temp files: what `gc` reports as left by killed commands. */
function leftovers(dir: string): string[] {
  const store = path.join(dir, '.tilesync')
  const packDir = path.join(store, 'objects', 'pack')
  const packs = fs.existsSync(packDir) ? fs.readdirSync(packDir) : []
  const unfinished = packs.filter((f) => f.endsWith('.pack') && !packs.includes(`${f.slice(0, -5)}.idx`))
  const tmp = fs.existsSync(path.join(store, 'tmp')) ? fs.readdirSync(path.join(store, 'tmp')) : []
  return [...unfinished.map((f) => `pack/${f}`), ...tmp.map((f) => `tmp/${f}`)]
}

/** Runs the CLI in the background and sends SIGINT once the command has started writing objects. */
async function interruptWhileWriting(dir: string, args: string[], watch = dir): Promise<{code: number | null; signal: string | null; stdout: string; stderr: string; sawWrites: string[]}> {
  const child = spawn(process.execPath, [BIN, ...args], {cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, TILESYNC_AUTHOR_NAME: 'T', TILESYNC_AUTHOR_EMAIL: 't@example.com'}})
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
  const closed = new Promise<{code: number | null; signal: string | null}>((resolve) => child.on('close', (code, signal) => resolve({code, signal})))
  let sawWrites: string[] = []
  const deadline = Date.now() + 60_000
  let done = false
  void closed.then(() => (done = true))
  while (!done && Date.now() < deadline) {
    sawWrites = leftovers(watch)
    if (sawWrites.some((f) => f.startsWith('pack/'))) break
    await new Promise((r) => setTimeout(r, 5))
  }
  child.kill('SIGINT')
  const end = await closed
  return {...end, stdout, stderr, sawWrites}
}

describe('Ctrl-C and messages that say what happened', function () {
  this.timeout(180_000)

  it('Ctrl-C during a first commit prints "interrupted; nothing committed", exits 130 and leaves nothing for gc', async () => {
    const {dir} = bigProject()
    expect(cli(dir, ['init']).code).to.equal(0)
    const r = await interruptWhileWriting(dir, ['commit', '-m', 'big'])
    expect(r.sawWrites.some((f) => f.startsWith('pack/')), `the commit was writing packs when stopped (${r.stderr})`).to.equal(true)
    expect(r.code, r.stderr).to.equal(130)
    expect(r.stderr).to.contain('tilesync: interrupted; nothing committed')
    const ws = await Workspace.open(dir)
    expect(await ws.repo.refs.headCommit()).to.equal(null)
    expect(leftovers(dir)).to.deep.equal([])
    const gc = cliJson<{tmp: {files: number}; youngTmp: {files: number}}>(dir, ['gc', '--dry-run'])
    expect([gc.tmp.files, gc.youngTmp.files]).to.deep.equal([0, 0])
    // The lock was released and the next commit runs normally.
    const again = cli(dir, ['commit', '-m', 'big'])
    expect(again.code, again.stderr).to.equal(0)
  })

  it('Ctrl-C during a clone removes the unfinished clone and says so', async () => {
    const {dir} = bigProject()
    const remote = path.join(tmpDir('interrupt-remote'), 'r')
    for (const args of [['init'], ['commit', '-m', 'big'], ['remote', 'add', 'origin', remote], ['push']]) expect(cli(dir, args).code).to.equal(0)
    const parent = tmpDir('interrupt-clone')
    const target = path.join(parent, 'copy')
    const r = await interruptWhileWriting(parent, ['clone', remote, target, '--no-hardlinks'], target)
    expect(r.sawWrites.length, `the clone was writing when stopped (${r.stderr})`).to.be.greaterThan(0)
    expect(r.code, r.stderr).to.equal(130)
    expect(r.stderr).to.contain('tilesync: interrupted; the unfinished clone was removed')
    expect(fs.existsSync(target)).to.equal(false)
    const again = cli(parent, ['clone', remote, target])
    expect(again.code, again.stderr).to.equal(0)
  })

  it('checkout HEAD --force on a branch stays on the branch', async () => {
    const {dir, db} = makeProject()
    expect(cli(dir, ['init']).code).to.equal(0)
    expect(cli(dir, ['commit', '-m', 'first']).code).to.equal(0)
    setGeneration(db, 0, 0, 4242)
    const r = cli(dir, ['checkout', 'HEAD', '--force'])
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout).to.contain('Still on branch main; the database is back at HEAD')
    expect(r.stdout).to.not.contain('detached')
    const ws = await Workspace.open(dir)
    expect(await ws.repo.refs.readHead()).to.deep.include({kind: 'branch', branch: 'main'})
    const dry = cliJson<{detached: boolean}>(dir, ['checkout', 'HEAD', '--dry-run'])
    expect(dry.detached).to.equal(false)
    // A commit id (or HEAD~0) still detaches, as in git.
    const head = (await ws.repo.refs.headCommit())!
    const byId = cli(dir, ['checkout', head.slice(0, 12)])
    expect(byId.code, byId.stderr).to.equal(0)
    expect(byId.stdout).to.contain('HEAD is now detached')
  })
})
