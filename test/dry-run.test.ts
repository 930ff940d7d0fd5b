import {expect} from 'chai'
import {createHash} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {checkout} from '../src/ops/checkout.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {fetchRemote} from '../src/ops/fetch.js'
import {gc} from '../src/ops/gc.js'
import {initRepository} from '../src/ops/init.js'
import {pruneRemote} from '../src/ops/prune.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {readSyncLog} from '../src/ops/sync-log.js'
import {Workspace} from '../src/workspace/workspace.js'
import {cli, cliJson} from './support/cli.js'
import {setGeneration, setNotes} from './support/edit.js'
import {dumpDatabase, makeProject, tmpDir, withDb} from './support/fixtures.js'

const author = {name: 'Tester', email: 't@example.com'}

/**
 * Every file under `dir` with a hash of its bytes: equal states mean nothing was written.
 * The sync log (a dry run is recorded there as such) and the lock file are left out.
 */
function fileState(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string): void => {
    if (!fs.existsSync(d)) return
    for (const e of fs.readdirSync(d, {withFileTypes: true})) {
      const p = path.join(d, e.name)
      const rel = path.relative(dir, p)
      if (rel === path.join('.tilesync', 'sync-log.jsonl') || rel === path.join('.tilesync', 'lock')) continue
      if (e.isDirectory()) walk(p)
      else out[rel] = createHash('sha256').update(fs.readFileSync(p)).digest('hex')
    }
  }
  walk(dir)
  return out
}

/** The repository (objects, refs, reflogs, HEAD, config) and the database, together. */
function everything(dir: string, db: string): {files: Record<string, string>; db: Record<string, unknown[]>} {
  return {files: fileState(dir), db: dumpDatabase(db)}
}

async function project(): Promise<{dir: string; db: string; ws: Workspace; remote: string}> {
  const {dir, db} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  const remote = path.join(tmpDir('dry-remote'), 'tiles')
  await addRemote(ws.repo, 'origin', remote)
  return {dir, db, ws, remote}
}

describe('--dry-run changes nothing and reports what the real run then does', function () {
  this.timeout(120_000)

  it('push: first and incremental', async () => {
    const {dir, db, ws, remote} = await project()
    const before = everything(dir, db)
    const dry = await push(ws, {dryRun: true})
    expect(dry.dryRun).to.equal(true)
    expect(everything(dir, db)).to.deep.equal(before)
    expect(fileState(remote)).to.deep.equal({})
    const real = await push(ws, {})
    expect([real.commits, real.objects, real.bytes]).to.deep.equal([dry.commits, dry.objects, dry.bytes])
    expect(real.objects).to.be.greaterThan(30)

    setGeneration(db, 0, 0, 501)
    setGeneration(db, 5, 4, 502)
    await commit(ws, {message: 'two tiles', author})
    const remoteBefore = fileState(remote)
    const localBefore = everything(dir, db)
    const dry2 = await push(ws, {dryRun: true})
    expect(fileState(remote)).to.deep.equal(remoteBefore)
    expect(everything(dir, db)).to.deep.equal(localBefore)
    const real2 = await push(ws, {})
    expect([real2.commits, real2.objects, real2.bytes]).to.deep.equal([dry2.commits, dry2.objects, dry2.bytes])
    expect(real2.commits).to.equal(1)
  })

  it('clone, fetch and pull', async () => {
    const {db, ws, remote} = await project()
    await push(ws, {})
    const target = path.join(tmpDir('dry-clone'), 'copy')
    const dryClone = await clone({url: remote, dir: target, dryRun: true})
    expect(fs.existsSync(target)).to.equal(false)
    const remoteBefore = fileState(remote)
    const realClone = await clone({url: remote, dir: target})
    expect([realClone.commits, realClone.objects, realClone.bytes, realClone.head]).to.deep.equal([dryClone.commits, dryClone.objects, dryClone.bytes, dryClone.head])
    expect(fileState(remote)).to.deep.equal(remoteBefore)

    setGeneration(db, 1, 1, 601)
    setGeneration(db, 2, 2, 602)
    setNotes(db, -1, -1, 'reviewed')
    await commit(ws, {message: 'more', author})
    await push(ws, {})
    const b = await Workspace.open(target)
    const bDb = path.join(target, realClone.database)
    const before = everything(target, bDb)
    const dryFetch = await fetchRemote(b, {dryRun: true})
    const dryPull = await pull(b, {dryRun: true})
    expect(everything(target, bDb)).to.deep.equal(before)
    expect(dryPull.objects).to.equal(dryFetch.objects)
    // Known before anything is fetched: trees read from the remote, nothing stored.
    expect(dryPull.wouldChange).to.deep.equal({tilesAdded: 0, tilesModified: 3, tilesDeleted: 0, rowsChanged: 3})
    expect(dryPull.preview?.changes.tiles.map((t) => t.key).sort()).to.deep.equal(['-1,-1', '1,1', '2,2'])
    expect(dryPull.preview?.fastForward).to.equal(true)
    // The CLI says "would fetch" and lists the tiles.
    const dryCli = cli(target, ['pull', '--dry-run'])
    expect(dryCli.code, dryCli.stderr).to.equal(0)
    expect(dryCli.stdout).to.match(/^Would fetch \d+ objects/)
    expect(dryCli.stdout).to.not.contain('Fetched')
    expect(dryCli.stdout).to.match(/Would fast-forward [0-9a-f]{10} -> [0-9a-f]{10}: 0 added, 3 modified, 0 deleted tiles, 3 rows:/)
    for (const key of ['1,1', '2,2', '-1,-1']) expect(dryCli.stdout).to.contain(`M tile ${key}`)
    expect(everything(target, bDb), 'the dry runs stored nothing').to.deep.equal(before)
    const dryFetchCli = cli(target, ['fetch', '--dry-run'])
    expect(dryFetchCli.code).to.equal(0)
    const logged = (await readSyncLog(b.repo)).filter((e) => e.op === 'fetch' && e.result === 'dry-run')
    expect(logged.map((e) => e.branch)).to.deep.equal(['main', 'main'])
    expect(logged.at(-1)?.to).to.equal(await ws.repo.refs.headCommit())

    const realFetch = await fetchRemote(b, {})
    expect([realFetch.objects, realFetch.bytes]).to.deep.equal([dryFetch.objects, dryFetch.bytes])
    // With the objects here, a dry pull also says what the merge would change.
    const afterFetch = everything(target, bDb)
    const dryMerge = await pull(b, {dryRun: true})
    expect(everything(target, bDb)).to.deep.equal(afterFetch)
    expect(dryMerge.wouldChange).to.deep.equal({tilesAdded: 0, tilesModified: 3, tilesDeleted: 0, rowsChanged: 3})
    const realPull = await pull(b, {})
    expect(realPull.merge?.outcome).to.equal('fast-forward')
    expect(realPull.merge?.rowsWritten).to.equal(dryMerge.wouldChange!.rowsChanged)
    expect(dumpDatabase(bDb)).to.deep.equal(dumpDatabase(db))
  })

  it('checkout: full, partial, over a schema change, over uncommitted changes', async () => {
    const {dir, db, ws} = await project()
    setGeneration(db, 0, 0, 701)
    setGeneration(db, 9, 9, 702)
    withDb(db, (d) => d.prepare('DELETE FROM quadrants WHERE quadrant_x = 1 AND quadrant_y = 1').run())
    await commit(ws, {message: 'edit, add, delete', author})
    const compare = async (revision: string, options: {tiles?: Array<[number, number]>; force?: boolean} = {}): Promise<void> => {
      const before = everything(dir, db)
      const dry = await checkout(ws, {revision, dryRun: true, ...options})
      expect(dry.dryRun).to.equal(true)
      expect(everything(dir, db), `dry checkout ${revision} wrote something`).to.deep.equal(before)
      const real = await checkout(ws, {revision, ...options})
      const pick = (r: typeof real): unknown[] => [r.target, r.head, r.detached, r.partial, r.rowsWritten, r.rowsDeleted, r.tilesChanged]
      expect(pick(real), revision).to.deep.equal(pick(dry))
      expect(Boolean(real.savedAs)).to.equal(Boolean(dry.wouldSave))
    }
    await compare('HEAD~1')
    await compare('main')
    await compare('HEAD~1', {tiles: [[0, 0], [1, 1]]})
    // A schema change: the table is recreated, every row written.
    withDb(db, (d) => d.exec('ALTER TABLE quadrants ADD COLUMN extra TEXT'))
    setNotes(db, 2, 2, 'with extra column')
    await commit(ws, {message: 'schema', author})
    await compare('HEAD~1')
    await compare('main')

    // Uncommitted changes: refused exactly as the real checkout refuses; with --force, the
    // dry run says they would be saved, and saves nothing.
    setGeneration(db, 4, 4, 703)
    const before = everything(dir, db)
    for (const dryRun of [true, false]) {
      try {
        await checkout(ws, {revision: 'HEAD~1', dryRun})
        expect.fail('checked out over uncommitted changes')
      } catch (error) {
        expect((error as {code?: string}).code).to.equal('DIRTY')
      }
      // (The real refusal keeps a copy of the working tree's objects; the dry run does not.)
      if (dryRun) expect(everything(dir, db)).to.deep.equal(before)
      else expect(dumpDatabase(db)).to.deep.equal(before.db)
    }
    await compare('HEAD~1', {force: true})
  })

  it('checkout --dry-run through the CLI', () => {
    const {dir, db} = makeProject()
    cli(dir, ['init'])
    cli(dir, ['commit', '-m', 'one'])
    setGeneration(db, 0, 0, 801)
    cli(dir, ['commit', '-m', 'two'])
    const before = everything(dir, db)
    const r = cli(dir, ['checkout', 'HEAD~1', '--dry-run'])
    expect(r.code).to.equal(0)
    expect(r.stdout).to.match(/^Would check out HEAD~1 \([0-9a-f]{10}\), HEAD detached: 1 rows written, 0 deleted, 1 tile\(s\) changed; nothing was changed\.$/m)
    expect(everything(dir, db)).to.deep.equal(before)
    const json = cliJson<{dryRun: boolean; rowsWritten: number}>(dir, ['checkout', 'HEAD~1', '--dry-run'])
    expect(json).to.include({dryRun: true, rowsWritten: 1})
  })

  it('gc', async () => {
    const {dir, db, ws} = await project()
    // Objects nothing refers to: a branch that was deleted, and a stray blob.
    setGeneration(db, 0, 0, 901)
    await commit(ws, {message: 'to drop', author})
    await checkout(ws, {revision: 'HEAD~1'})
    await ws.repo.store.put(Buffer.from('stray object'))
    const before = everything(dir, db)
    // Every loose object counts for packing here (a first commit packs its images itself; the trees stay loose).
    const dry = await gc(ws, {dryRun: true, graceMs: 0, loosePackMin: 1})
    expect(everything(dir, db)).to.deep.equal(before)
    expect(dry.removed.objects).to.be.greaterThan(0)
    const objects = (): number => Object.keys(fileState(path.join(dir, '.tilesync', 'objects'))).length
    const count = objects()
    const real = await gc(ws, {graceMs: 0, loosePackMin: 1})
    expect([real.removed, real.reachable, real.young, real.loosePacked, real.packsMerged]).to.deep.equal([dry.removed, dry.reachable, dry.young, dry.loosePacked, dry.packsMerged])
    expect(real.loosePacked, 'the reachable loose objects went into a pack').to.be.greaterThan(0)
    // Removed files go; packed loose files become one pack (its .pack and .idx).
    expect(objects()).to.equal(count - real.removed.objects - real.loosePacked + 2)
  })

  it('prune of a remote', async () => {
    const {db, ws, remote} = await project()
    for (let i = 0; i < 3; i++) {
      setGeneration(db, i, 0, 1000 + i)
      await commit(ws, {message: `round ${i}`, author})
    }
    await push(ws, {})
    const before = fileState(remote)
    const beforeBytes = fs.readdirSync(remote, {recursive: true, withFileTypes: true}).filter((e) => e.isFile()).reduce((n, e) => n + fs.statSync(path.join(e.parentPath, e.name)).size, 0)
    const dry = await pruneRemote(ws.repo, 'origin', {keepLast: 1, dryRun: true, graceMs: 0})
    expect(fileState(remote)).to.deep.equal(before)
    expect(dry.removed.objects).to.be.greaterThan(0)
    const real = await pruneRemote(ws.repo, 'origin', {keepLast: 1, graceMs: 0})
    expect([real.removed, real.reachable, real.keptCommits, real.shallow]).to.deep.equal([dry.removed, dry.reachable, dry.keptCommits, dry.shallow])
    // The packs were rewritten without what only older commits used: fewer bytes stored.
    const bytes = (): number => fs.readdirSync(remote, {recursive: true, withFileTypes: true}).filter((e) => e.isFile()).reduce((n, e) => n + fs.statSync(path.join(e.parentPath, e.name)).size, 0)
    expect(bytes()).to.be.lessThan(beforeBytes)
  })
})
