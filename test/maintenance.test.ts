import {expect} from 'chai'
import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {deleteRef, switchBranch} from '../src/ops/branches.js'
import {checkout} from '../src/ops/checkout.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {fsckLocal, fsckRemote} from '../src/ops/fsck.js'
import {gc} from '../src/ops/gc.js'
import {initRepository} from '../src/ops/init.js'
import {log} from '../src/ops/log.js'
import {mergeCommit, resolveMerge} from '../src/ops/merge.js'
import {pruneRemote} from '../src/ops/prune.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote, remoteConfig} from '../src/ops/remotes.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {openBackend} from '../src/remote/registry.js'
import {RemoteStore, remoteKeys} from '../src/remote/object-store/remote-store.js'
import {SHALLOW_KEY} from '../src/remote/object-store/shallow-remote.js'
import {cli, cliJson} from './support/cli.js'
import {setGeneration, setNotes} from './support/edit.js'
import {dumpDatabase, makeProject, tmpDir} from './support/fixtures.js'
import {S3RVER_KEY, startS3Server, type S3TestServer} from './support/s3-server.js'

const author = {name: 'M', email: 'm@example.com'}
const OLD = new Date(Date.now() - 3 * 3_600_000)

async function project(commits = 1): Promise<{ws: Workspace; dir: string; db: string; ids: string[]}> {
  const {dir, db} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  const ids: string[] = []
  for (let i = 0; i < commits; i++) {
    if (i > 0) setGeneration(db, (i % 6) - 3, (i % 5) - 2, 900 + i)
    ids.push((await commit(ws, {message: `c${i}`, author})).id!)
  }
  return {ws, dir, db, ids}
}

/** Makes every object look old, as if written long before the grace period. */
function ageObjects(dir: string): void {
  for (const f of fs.readdirSync(dir, {recursive: true, withFileTypes: true})) {
    if (f.isFile()) fs.utimesSync(path.join(f.parentPath, f.name), OLD, OLD)
  }
}

/** A blob of the commit's tile table: [id, tile x, y]. */
async function someBlobOf(ws: Workspace, commitId: string): Promise<string> {
  const state = await ws.stateOf(commitId)
  for await (const row of ws.reader.rows(state.tables.get('quadrants')!)) {
    const i = row.types.indexOf('b')
    if (i >= 0) return (row.values[i] as {id: string}).id
  }
  throw new Error('no blob')
}

describe('fsck', () => {
  it('a healthy repository: every ref complete, reflog-only commits listed as recoverable', async () => {
    const {ws, db} = await project(2)
    await switchBranch(ws, 'experiment', {create: true})
    setNotes(db, 0, 0, 'experiment')
    const lost = (await commit(ws, {message: 'on a branch about to be deleted', author})).id!
    await switchBranch(ws, 'main')
    await deleteRef(ws, 'heads', 'experiment')
    const r = await fsckLocal(ws)
    expect(r.ok, JSON.stringify(r.problems)).to.equal(true)
    expect(r.refs.every((x) => x.complete)).to.equal(true)
    expect(r.commits).to.equal(2)
    expect(r.recoverable.map((x) => x.id)).to.include(lost)
    expect(r.recoverable.find((x) => x.id === lost)!.complete).to.equal(true)
    const json = cliJson<{ok: boolean}>(ws.repo.root, ['fsck'])
    expect(json.ok).to.equal(true)
  })

  it('names a missing tile image by tile, layer and commit; --repair fetches it back from the remote', async () => {
    const {ws, ids} = await project(2)
    const remote = path.join(tmpDir(), 'r')
    await addRemote(ws.repo, 'origin', remote)
    await push(ws, {})
    const blob = await someBlobOf(ws, ids[1])
    await ws.repo.store.delete(blob)
    const r = cli(ws.repo.root, ['fsck'])
    expect(r.code).to.equal(1)
    expect(r.stdout).to.match(new RegExp(`object ${blob.slice(0, 10)} \\(tile -?\\d+,-?\\d+ (render|generation) at commit [0-9a-f]{10}\\) is missing: run \`tilesync fsck --repair\` to download it again from origin`))
    expect(r.stdout).to.include('branch main points at commit')
    const fixed = cli(ws.repo.root, ['fsck', '--repair'])
    expect(fixed.code, fixed.stdout).to.equal(0)
    expect(fixed.stdout).to.include('Repaired 1 object(s)')
    expect((await fsckLocal(ws)).ok).to.equal(true)
  })

  it('reports corrupt and undecodable objects, lost history and damaged refs', async () => {
    const {ws, ids} = await project(3)
    // A tree object whose bytes no longer match its id.
    const snapshot = (await ws.reader.commit(ids[2])).tree
    fs.appendFileSync(ws.repo.store.pathOf(snapshot), 'x')
    // The first commit gone: the history below the second is lost.
    fs.rmSync(ws.repo.store.pathOf(ids[0]))
    // A tag file holding garbage.
    fs.mkdirSync(path.join(ws.repo.layout.dir, 'refs', 'tags'), {recursive: true})
    fs.writeFileSync(path.join(ws.repo.layout.dir, 'refs', 'tags', 'v1'), 'not an id\n')
    const r = await fsckLocal(ws)
    expect(r.ok).to.equal(false)
    const text = r.problems.map((p) => p.message).join('\n')
    expect(text).to.include(`snapshot ${snapshot.slice(0, 10)} (of commit ${ids[2].slice(0, 10)}) is corrupt`)
    expect(text).to.include(`the history below commit ${ids[1].slice(0, 10)} is missing (parent ${ids[0].slice(0, 10)})`)
    expect(text).to.match(/tag v1 is damaged/)
    expect(r.refs.find((x) => x.name === 'refs/heads/main')!.complete).to.equal(false)
  })

  it('an object stored under the wrong kind (a blob where a tree node belongs) is reported as undecodable', async () => {
    const {ws, ids} = await project(1)
    const snap = await ws.reader.snapshot((await ws.reader.commit(ids[0])).tree)
    // The table tree's file replaced by a tile image's bytes.
    const blob = await someBlobOf(ws, ids[0])
    const bytes = (await ws.repo.store.readRaw(blob))!
    fs.writeFileSync(ws.repo.store.pathOf(snap.tables[0].id), bytes)
    const r = await fsckLocal(ws)
    expect(r.problems.map((p) => p.message).join('\n')).to.include(`table tree ${snap.tables[0].id.slice(0, 10)}`)
  })
})

describe('gc', () => {
  it('removes old unreachable objects and stale temp files, keeps young ones, refs, reflogs, refs/saved and a merge in progress', async () => {
    const {ws, db, ids} = await project(2)
    // Reflog-only commit (deleted branch), refs/saved (checkout --force), and a conflicted merge.
    await switchBranch(ws, 'gone', {create: true})
    setNotes(db, 1, 1, 'only in a reflog')
    const lost = (await commit(ws, {message: 'lost', author})).id!
    await switchBranch(ws, 'main')
    await deleteRef(ws, 'heads', 'gone')
    setNotes(db, 2, 2, 'uncommitted')
    const saved = (await checkout(ws, {revision: ids[0], force: true})).savedAs!
    await checkout(ws, {revision: 'main'})
    await switchBranch(ws, 'theirs', {create: true})
    setNotes(db, 0, 0, 'theirs')
    const theirs = (await commit(ws, {message: 'theirs', author})).id!
    await switchBranch(ws, 'main')
    setNotes(db, 0, 0, 'ours')
    await commit(ws, {message: 'ours', author})
    await deleteRef(ws, 'heads', 'theirs')
    fs.rmSync(ws.repo.layout.reflog('refs/heads/theirs'))
    expect((await mergeCommit(ws, theirs, 'theirs')).outcome).to.equal('conflicts')
    // Garbage: objects nothing refers to, and temp files.
    const junk: string[] = []
    for (let i = 0; i < 5; i++) junk.push(await ws.repo.store.put(randomBytes(100 + i)))
    fs.writeFileSync(path.join(ws.repo.layout.tmp, 'killed.tmp'), 'x')
    ageObjects(ws.repo.layout.dir)
    const fresh = await ws.repo.store.put(randomBytes(50))
    fs.writeFileSync(path.join(ws.repo.layout.tmp, 'being-written.tmp'), 'yy')

    const dry = await gc(ws, {dryRun: true})
    expect(dry.removed.objects).to.equal(5)
    expect(dry.tmp.files).to.equal(1)
    expect(dry.youngTmp).to.deep.equal({files: 1, bytes: 2})
    expect(dry.young.objects).to.equal(1)
    expect(cli(ws.repo.root, ['gc', '--dry-run']).stdout).to.contain('Would keep 1 temp file(s) (2 B) younger than 1h')
    for (const id of junk) expect(await ws.repo.store.has(id)).to.equal(true)

    const r = cliJson<{removed: {objects: number}; tmp: {files: number}}>(ws.repo.root, ['gc'])
    expect(r.removed.objects).to.equal(5)
    expect(r.tmp.files).to.equal(1)
    for (const id of junk) expect(await ws.repo.store.has(id)).to.equal(false)
    expect(await ws.repo.store.has(fresh)).to.equal(true)
    const f = await fsckLocal(ws)
    expect(f.ok, JSON.stringify(f.problems)).to.equal(true)
    expect(f.recoverable.find((x) => x.id === lost)?.complete).to.equal(true)
    expect(f.refs.find((x) => x.name === 'refs/saved')?.id).to.equal(saved)
    // Everything kept is usable: resolve the merge, check out the reflog-only commit.
    expect((await resolveMerge(ws, 'theirs')).outcome).to.equal('merged')
    await checkout(ws, {revision: lost})
    expect((await status(ws)).clean).to.equal(true)
  })

  it('keeps what a push journal and the database baseline need, and a young object\'s whole tree', async () => {
    const {ws, db} = await project(1)
    // A commit that was written but never referenced (a killed commit), young: its tree stays.
    setGeneration(db, 0, 0, 4242)
    const scanned = await ws.scan(ws.openDb(false), {store: true})
    const {writeCommit} = await import('../src/history/write-commit.js')
    ageObjects(ws.repo.layout.dir)
    const orphan = await writeCommit(ws.repo, {tree: scanned.state.snapshotId, parents: [], author, message: 'killed', stats: {tilesAdded: 0, tilesModified: 0, tilesDeleted: 0, rowsChanged: 0}})
    // An id an unfinished push recorded.
    const journaled = await ws.repo.store.put(randomBytes(64))
    fs.mkdirSync(ws.repo.layout.remoteState('origin'), {recursive: true})
    fs.writeFileSync(path.join(ws.repo.layout.remoteState('origin'), 'uploaded'), `${journaled}\n`)
    ageObjects(path.join(ws.repo.layout.objects, journaled.slice(0, 2)))
    await gc(ws, {graceMs: 60_000})
    // The young commit's tree is complete even though its older objects are unreachable.
    const blob = await someBlobOf(ws, orphan)
    expect(await ws.repo.store.has(blob)).to.equal(true)
    expect(await ws.repo.store.has(journaled)).to.equal(true)
    // Once the commit is old too, nothing keeps it.
    ageObjects(ws.repo.layout.dir)
    const r = await gc(ws, {graceMs: 60_000})
    expect(r.removed.objects).to.be.greaterThan(0)
    expect(await ws.repo.store.has(orphan)).to.equal(false)
    expect(await ws.repo.store.has(journaled)).to.equal(true)
    // The change record's baseline is kept: status still reads only changed rows.
    setNotes(db, 3, 1, 'after gc')
    const st = await status(ws)
    expect(st.scan.incremental, st.scan.reason).to.equal(true)
    expect((await fsckLocal(ws)).ok).to.equal(true)
  })

  it('stops before removing anything when a reachable object is damaged', async () => {
    const {ws, ids} = await project(2)
    const junk = await ws.repo.store.put(randomBytes(10))
    ageObjects(ws.repo.layout.dir)
    const snapshot = (await ws.reader.commit(ids[1])).tree
    fs.appendFileSync(ws.repo.store.pathOf(snapshot), 'x')
    const r = cli(ws.repo.root, ['gc'])
    expect(r.code).to.equal(1)
    expect(r.stderr).to.match(/gc stopped before removing anything: the snapshot [0-9a-f]{10} of commit [0-9a-f]{10} is damaged \(run `tilesync fsck`/)
    expect(await ws.repo.store.has(junk)).to.equal(true)
  })
})

describe('prune', () => {
  it('directory remote: keeps the last N commits; clone, log, fetch, pull and push work on the cut history', async () => {
    const {ws, db, ids} = await project(6)
    const remote = path.join(tmpDir(), 'r')
    await addRemote(ws.repo, 'origin', remote)
    await push(ws, {})
    const full = path.join(tmpDir(), 'full')
    await clone({url: remote, dir: full})
    const store = new RemoteStore(await openBackend(remoteConfig(ws.repo, 'origin'), ws.repo.root), 'origin')
    const dry = await pruneRemote(ws.repo, 'origin', {keepLast: 2, dryRun: true, graceMs: 0})
    expect(dry.removed.objects).to.be.greaterThan(0)
    expect(await store.getObjectBytes(ids[0])).to.not.equal(null)
    // With the default grace period nothing just pushed goes.
    expect((await pruneRemote(ws.repo, 'origin', {keepLast: 2})).removed.objects).to.equal(0)
    ageObjects(remote)
    const out = cli(ws.repo.root, ['prune', 'origin', '--keep-last', '2', '--grace', '0'])
    expect(out.code, out.stderr).to.equal(0)
    expect(out.stdout).to.match(/Kept 2 commit\(s\) on origin/)
    expect((await store.backend.get(SHALLOW_KEY))!.toString()).to.match(new RegExp(`^# pruned-before \\d+\\n${ids[4]}\\n$`))
    expect(await store.getObjectBytes(ids[3])).to.equal(null)
    const rf = await fsckRemote(ws, 'origin')
    expect(rf.ok, JSON.stringify(rf.problems)).to.equal(true)
    expect(rf.shallow).to.deep.equal([ids[4]])
    expect(rf.unreferenced.objects).to.equal(0)

    // A clone of the pruned remote: two commits, the same database, fsck clean with a shallow root.
    const cloned = path.join(tmpDir(), 'cut')
    const c = cli(path.dirname(cloned), ['clone', remote, cloned])
    expect(c.code, c.stderr).to.equal(0)
    const cws = await Workspace.open(cloned)
    expect(dumpDatabase(path.join(cloned, 'generations/v01/quadrants.db'))).to.deep.equal(dumpDatabase(db))
    expect((await log(cws)).map((e) => e.id)).to.deep.equal([ids[5], ids[4]])
    expect(fs.readFileSync(path.join(cloned, '.tilesync', 'shallow'), 'utf8').trim()).to.equal(ids[4])
    const cf = await fsckLocal(cws)
    expect(cf.ok, JSON.stringify(cf.problems)).to.equal(true)
    expect(cf.shallow).to.deep.equal([ids[4]])
    expect(cli(cloned, ['checkout', 'HEAD~1']).code).to.equal(0)
    expect(cli(cloned, ['checkout', 'HEAD~1']).stderr).to.match(/goes back past the first commit/)
    expect(cli(cloned, ['checkout', 'main']).code).to.equal(0)

    // The shallow clone commits and pushes; the full clone pulls that and pushes a merge of old history.
    setGeneration(path.join(cloned, 'generations/v01/quadrants.db'), 0, 0, 5150)
    await commit(cws, {message: 'from the shallow clone', author})
    await push(cws, {})
    const fws = await Workspace.open(full)
    await switchBranch(fws, 'old-work', {create: true, from: ids[1]})
    setNotes(path.join(full, 'generations/v01/quadrants.db'), 2, 2, 'work based on pruned history')
    await commit(fws, {message: 'old-based', author})
    await switchBranch(fws, 'main')
    await pull(fws, {})
    expect((await mergeCommit(fws, await fws.resolve('old-work'), 'old-work')).outcome).to.equal('merged')
    await push(fws, {})
    const after = await fsckRemote(fws, 'origin')
    expect(after.ok, JSON.stringify(after.problems)).to.equal(true)
    // Pulling into the shallow clone brings the merge and the old history it now needs.
    await pull(cws, {})
    expect((await fsckLocal(cws)).ok).to.equal(true)
    expect(dumpDatabase(path.join(cloned, 'generations/v01/quadrants.db'))).to.deep.equal(dumpDatabase(path.join(full, 'generations/v01/quadrants.db')))

    // A push interrupted before a prune: its journal may name objects the prune removed, so
    // it is forgotten and everything is sent again.
    setGeneration(path.join(cloned, 'generations/v01/quadrants.db'), 1, 1, 6160)
    const next = (await commit(cws, {message: 'after an interrupted push', author})).id!
    const {planCommits} = await import('../src/remote/object-store/object-plan.js')
    const plan = await planCommits(cws.reader, [next])
    const claimed = [...plan.blobs.keys(), ...plan.leaves, ...plan.mids, ...plan.roots, ...plan.tables, ...plan.snapshots, next]
    fs.mkdirSync(cws.repo.layout.remoteState('origin'), {recursive: true})
    fs.writeFileSync(path.join(cws.repo.layout.remoteState('origin'), 'uploaded'), `# started 1\n${claimed.join('\n')}\n`)
    await pull(cws, {})
    await push(cws, {})
    const resumed = await fsckRemote(cws, 'origin')
    expect(resumed.ok, JSON.stringify(resumed.problems)).to.equal(true)
    await store.backend.close?.()
  })

  describe('S3 remote', () => {
    let server: S3TestServer
    const saved: Record<string, string | undefined> = {}
    before(async () => {
      server = await startS3Server({buckets: ['prune']})
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) saved[k] = process.env[k]
      process.env.AWS_ACCESS_KEY_ID = S3RVER_KEY
      process.env.AWS_SECRET_ACCESS_KEY = 'prune-test-secret'
    })
    after(async () => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
      await server.stop()
    })

    it('prunes with the grace period on lastModified, and a clone of the result works', async function () {
      this.timeout(60_000)
      const {ws, db, ids} = await project(4)
      const url = `s3://prune/p-${randomBytes(4).toString('hex')}`
      await addRemote(ws.repo, 'origin', url, {endpoint: server.endpoint})
      await push(ws, {})
      const store = new RemoteStore(await openBackend({url, endpoint: server.endpoint}), 'origin')
      expect((await pruneRemote(ws.repo, 'origin', {keepLast: 1, graceMs: 3_600_000})).removed.objects).to.equal(0)
      await new Promise((r) => setTimeout(r, 1100))
      const r = await pruneRemote(ws.repo, 'origin', {keepLast: 1, graceMs: 0})
      expect(r.removed.objects).to.be.greaterThan(0)
      expect(r.shallow).to.deep.equal([ids[3]])
      expect((await fsckRemote(ws, 'origin')).ok).to.equal(true)
      const dir = path.join(tmpDir(), 'c')
      await clone({url, dir, remote: {endpoint: server.endpoint}})
      expect(dumpDatabase(path.join(dir, 'generations/v01/quadrants.db'))).to.deep.equal(dumpDatabase(db))
      expect((await log(await Workspace.open(dir))).length).to.equal(1)
      await store.backend.close?.()
    })
  })
})

describe('recovery: refs/saved and the reflog (CLI)', () => {
  it('checkout --force saves uncommitted work with a notice; reflog saved lists it; HEAD@{N} goes back', async () => {
    const {dir, db} = makeProject()
    expect(cli(dir, ['init']).code).to.equal(0)
    expect(cli(dir, ['commit', '-m', 'a']).code).to.equal(0)
    setGeneration(db, 0, 0, 8080)
    expect(cli(dir, ['commit', '-m', 'b']).code).to.equal(0)
    setNotes(db, 1, 1, 'precious uncommitted work')
    setGeneration(db, 2, 2, 8181)
    const work = dumpDatabase(db)
    const refused = cli(dir, ['checkout', 'HEAD~1'])
    expect(refused.code).to.equal(1)
    expect(refused.stderr).to.match(/^tilesync: the database has uncommitted changes \(2 rows, 2 tiles\) \(commit them first .*--force .*saved first\)\)\n$/)
    const forced = cli(dir, ['checkout', 'HEAD~1', '--force'])
    expect(forced.code, forced.stderr).to.equal(0)
    const m = /Saved your uncommitted changes as ([0-9a-f]{10}): get them back with `tilesync checkout \1`\./.exec(forced.stdout)
    expect(m, forced.stdout).to.not.equal(null)
    const saved = cliJson<{entries: Array<{new: string; selector: string; message: string}>}>(dir, ['reflog', 'saved'])
    expect(saved.entries).to.have.length(1)
    expect(saved.entries[0].new.startsWith(m![1])).to.equal(true)
    expect(saved.entries[0].selector).to.equal('saved@{0}')
    expect(cli(dir, ['checkout', m![1]]).code).to.equal(0)
    expect(dumpDatabase(db)).to.deep.equal(work)
    // HEAD's reflog: back to where we were before the last two moves.
    const heads = cliJson<{entries: Array<{new: string; message: string}>}>(dir, ['reflog'])
    expect(heads.entries[0].message).to.match(/^checkout: moving to /)
    expect(cli(dir, ['checkout', 'HEAD@{2}', '--force']).code).to.equal(0)
    expect(cli(dir, ['log', '-n', '1', '--oneline']).stdout).to.match(/ b /)
    const f = cliJson<{ok: boolean; refs: Array<{name: string; complete: boolean}>}>(dir, ['fsck'])
    expect(f.ok).to.equal(true)
    expect(f.refs.find((r) => r.name === 'refs/saved')?.complete).to.equal(true)
  })
})

