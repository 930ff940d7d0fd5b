import {expect} from 'chai'
import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import git from 'isomorphic-git'

import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {addRemote} from '../src/ops/remotes.js'
import {readSyncLog} from '../src/ops/sync-log.js'
import {Workspace} from '../src/workspace/workspace.js'
import {openBackend} from '../src/remote/registry.js'
import {RemoteStore} from '../src/remote/object-store/remote-store.js'
import {cloneRelease, pullRelease} from '../src/release/consume.js'
import {MANIFEST_FILE, parseManifest, serializeManifest} from '../src/release/manifest.js'
import {prepareRelease} from '../src/release/prepare.js'
import {publishRelease} from '../src/release/publish.js'
import {cli, cliJson} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {dumpDatabase, makeProject, tmpDir} from './support/fixtures.js'
import {S3RVER_KEY, startS3Server, type S3TestServer} from './support/s3-server.js'

const author = {name: 'Tester', email: 't@example.com'}
const gitAuthor = {name: 'Reviewer', email: 'r@example.com'}

/** A data project that is also a git repository (data and .tilesync/ ignored), with one tilesync commit. */
async function releaseProject(): Promise<{dir: string; db: string; ws: Workspace}> {
  const {dir, db} = makeProject()
  await git.init({fs, dir, defaultBranch: 'main'})
  fs.writeFileSync(path.join(dir, '.gitignore'), '.tilesync/\ngenerations/\n')
  fs.writeFileSync(path.join(dir, 'README.md'), '# city tiles\n')
  await git.add({fs, dir, filepath: '.gitignore'})
  await git.add({fs, dir, filepath: 'README.md'})
  await git.commit({fs, dir, message: 'start', author: gitAuthor})
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first tiles', author})
  return {dir, db, ws}
}

/** What a reviewer does: someone else changed main meanwhile, then the release branch is merged into it (a real merge commit). */
async function mergeIntoMain(dir: string, branch: string): Promise<string> {
  await git.checkout({fs, dir, ref: 'main', force: true})
  fs.writeFileSync(path.join(dir, 'NOTES.md'), `notes ${randomBytes(4).toString('hex')}\n`)
  await git.add({fs, dir, filepath: 'NOTES.md'})
  await git.commit({fs, dir, message: 'notes', author: gitAuthor})
  const merged = await git.merge({fs, dir, ours: 'main', theirs: branch, author: gitAuthor, message: `Merge ${branch}`})
  expect(merged.mergeCommit, 'a merge commit').to.equal(true)
  await git.checkout({fs, dir, ref: 'main', force: true})
  return merged.oid!
}

/** A checkout of the git repository alone, as CI has it: no .tilesync/, no database. */
async function ciCheckout(dir: string, ref = 'main'): Promise<string> {
  const ci = path.join(tmpDir('ci'), 'repo')
  fs.mkdirSync(ci)
  fs.cpSync(path.join(dir, '.git'), path.join(ci, '.git'), {recursive: true})
  await git.checkout({fs, dir: ci, ref, force: true})
  return ci
}

describe('reviewed releases: prepare -> merge -> publish -> clone --release (S3 test server)', function () {
  this.timeout(180_000)
  let server: S3TestServer
  const saved: Record<string, string | undefined> = {}

  before(async () => {
    server = await startS3Server({buckets: ['rel-staging', 'rel-production']})
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) saved[k] = process.env[k]
    process.env.AWS_ACCESS_KEY_ID = S3RVER_KEY
    process.env.AWS_SECRET_ACCESS_KEY = 'release-test-secret'
  })

  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
    await server?.stop()
  })

  async function withRemotes(ws: Workspace): Promise<{staging: string; production: string}> {
    const prefix = `r-${randomBytes(5).toString('hex')}`
    const staging = `s3://rel-staging/${prefix}`
    const production = `s3://rel-production/${prefix}`
    await addRemote(ws.repo, 'staging', staging, {endpoint: server.endpoint})
    await addRemote(ws.repo, 'production', production, {endpoint: server.endpoint})
    return {staging, production}
  }

  /** Where a branch is on a remote, read directly (null: no such branch). */
  async function branchOn(url: string, branch = 'main'): Promise<string | null> {
    const r = new RemoteStore(await openBackend({url, endpoint: server.endpoint}), 'raw')
    try {
      return (await r.readBranch(branch))?.id ?? null
    } finally {
      await r.backend.close?.()
    }
  }

  /** Every key on a remote with its size and ETag: equal listings mean nothing was written. */
  async function listing(url: string): Promise<string[]> {
    const r = new RemoteStore(await openBackend({url, endpoint: server.endpoint}), 'raw')
    const out: string[] = []
    for await (const k of r.backend.list('')) {
      const v = await r.backend.getVersioned(k.key)
      out.push(`${k.key} ${k.size} ${v?.etag}`)
    }
    await r.backend.close?.()
    return out.sort()
  }

  it('runs the whole flow; the clone equals the source; publishing again changes nothing', async () => {
    const {dir, db, ws} = await releaseProject()
    const {staging, production} = await withRemotes(ws)
    const head = (await ws.repo.refs.headCommit())!

    const prepared = await prepareRelease(ws, {staging: 'staging', name: 'city', cwd: dir})
    expect(prepared.gitBranch).to.equal(`release/city-${head.slice(0, 10)}`)
    expect(prepared.manifestPath).to.equal(path.join(dir, MANIFEST_FILE))
    expect(prepared.push.to).to.equal(head)
    expect(prepared.nextSteps[0]).to.equal(`git push -u origin ${prepared.gitBranch}`)
    const m = prepared.manifest
    expect(m).to.include({name: 'city', branch: 'main', commit: head, tiles: 30, message: 'first tiles'})
    expect(m.rows).to.be.greaterThan(m.tiles)
    expect(m.remote).to.deep.equal({name: 'staging', url: staging, endpoint: server.endpoint})
    expect(m.blobs).to.be.greaterThan(20)
    expect(m.bytes).to.be.greaterThan(m.blobs * 50)
    // The manifest is committed on the new git branch, which HEAD is now on; main does not have it.
    expect(await git.currentBranch({fs, dir})).to.equal(prepared.gitBranch)
    const onBranch = await git.readBlob({fs, dir, oid: prepared.gitCommit, filepath: MANIFEST_FILE})
    expect(parseManifest(Buffer.from(onBranch.blob).toString('utf8'), 'branch')).to.deep.equal(m)
    expect(fs.readFileSync(prepared.manifestPath, 'utf8')).to.equal(serializeManifest(m))
    const gitLog = await git.log({fs, dir, ref: prepared.gitBranch, depth: 1})
    expect(gitLog[0].commit.message).to.match(/^Release city: tilesync commit [0-9a-f]{10} \(30 tiles/)
    expect((await branchOn(staging))).to.equal(head)
    expect(await branchOn(production)).to.equal(null)

    await mergeIntoMain(dir, prepared.gitBranch)

    // CI: a checkout of the git repository only; remotes by URL, credentials from the environment.
    const ci = await ciCheckout(dir)
    expect(fs.existsSync(path.join(ci, '.tilesync'))).to.equal(false)
    const dry = await publishRelease({cwd: ci, production, productionConfig: {endpoint: server.endpoint}, dryRun: true})
    expect(dry).to.include({outcome: 'published', dryRun: true, previous: null, commit: head})
    expect(await listing(production)).to.deep.equal([])
    const published = await publishRelease({cwd: ci, production, productionConfig: {endpoint: server.endpoint}})
    expect(published).to.include({outcome: 'published', dryRun: false, commit: head, branch: 'main', previous: null, copiedServerSide: true})
    expect(published.objects).to.equal(dry.objects)
    expect(published.bytes).to.equal(dry.bytes)
    expect(published.verified).to.deep.equal({tiles: m.tiles, rows: m.rows, blobs: m.blobs, bytes: m.bytes})
    expect(published.source.path).to.equal(MANIFEST_FILE)
    expect((await branchOn(production))).to.equal(head)

    // Again, from CI and from the developer's repository: nothing is written anywhere.
    const before = await listing(production)
    const stagingBefore = await listing(staging)
    server.requestLog.reset()
    const again = await publishRelease({cwd: ci, production, productionConfig: {endpoint: server.endpoint}})
    expect(again).to.include({outcome: 'up-to-date', objects: 0, bytes: 0, previous: head})
    const fromDev = await publishRelease({cwd: dir, production: 'production'})
    expect(fromDev).to.include({outcome: 'up-to-date', objects: 0, production: 'production', staging: 'staging'})
    expect(server.requestLog.count('PUT')).to.equal(0)
    expect(server.requestLog.count('DELETE')).to.equal(0)
    expect(await listing(production)).to.deep.equal(before)
    expect(await listing(staging)).to.deep.equal(stagingBefore)

    // clone --release from production: exactly the pinned commit, equal to the source database.
    const target = path.join(tmpDir('release-clone'), 'city')
    const cloned = await cloneRelease({manifest: path.join(ci, MANIFEST_FILE), url: production, remote: {endpoint: server.endpoint}, dir: target})
    expect(cloned.head).to.equal(head)
    expect(cloned.branch).to.equal('main')
    expect(dumpDatabase(path.join(target, cloned.database))).to.deep.equal(dumpDatabase(db))

    // The developer's sync log has the prepare's push and the publish.
    const log = await readSyncLog(ws.repo)
    expect(log.filter((e) => e.op === 'push').map((e) => [e.remote, e.to, e.result])).to.deep.equal([['staging', head, 'ok']])
    expect(log.filter((e) => e.op === 'publish').map((e) => [e.remote, e.branch, e.from, e.to, e.objects, e.result])).to.deep.equal([['production', 'main', head, head, 0, 'ok']])
  })

  it('a second release: pull --release moves a clone to exactly it; an older manifest is refused as superseded; clone --release from staging by default', async () => {
    const {dir, db, ws} = await releaseProject()
    const {staging, production} = await withRemotes(ws)
    const first = await prepareRelease(ws, {staging: 'staging', cwd: dir})
    const firstMerge = await mergeIntoMain(dir, first.gitBranch)
    await publishRelease({cwd: dir, production: 'production'})
    const firstDump = dumpDatabase(db)

    // A consumer clones the first release from the manifest alone (default: the staging location it records).
    const consumerDir = path.join(tmpDir('consumer'), 'c')
    const firstManifest = path.join(tmpDir('manifest'), MANIFEST_FILE)
    fs.writeFileSync(firstManifest, serializeManifest(first.manifest))
    const consumer = await cloneRelease({manifest: firstManifest, dir: consumerDir})
    expect(consumer.head).to.equal(first.manifest.commit)
    const consumerDb = path.join(consumerDir, consumer.database)
    expect(dumpDatabase(consumerDb)).to.deep.equal(firstDump)

    setGeneration(db, 0, 0, 7001)
    setGeneration(db, 3, 2, 7002)
    await commit(ws, {message: 'two new tiles', author})
    const second = await prepareRelease(ws, {staging: 'staging', cwd: dir, gitBranch: 'release/june'})
    expect(second.gitBranch).to.equal('release/june')
    expect(second.push.commits).to.equal(1)
    await mergeIntoMain(dir, 'release/june')
    const published = await publishRelease({cwd: dir, production: 'production'})
    expect(published).to.include({outcome: 'published', previous: first.manifest.commit, commit: second.manifest.commit, commits: 1})

    // The consumer (remote origin = staging, from the clone) pulls the release the manifest pins.
    const consumerWs = await Workspace.open(consumerDir)
    await addRemote(consumerWs.repo, 'production', production, {endpoint: server.endpoint})
    const secondManifest = path.join(tmpDir('manifest'), MANIFEST_FILE)
    fs.writeFileSync(secondManifest, serializeManifest(second.manifest))
    const dryPull = await pullRelease(consumerWs, {manifest: secondManifest, remote: 'production', dryRun: true})
    expect(dumpDatabase(consumerDb)).to.deep.equal(firstDump)
    const pulled = await pullRelease(consumerWs, {manifest: secondManifest, remote: 'production'})
    expect(pulled.objects).to.equal(dryPull.objects)
    expect(pulled.bytes).to.equal(dryPull.bytes)
    expect(pulled.merge?.outcome).to.equal('fast-forward')
    expect(await consumerWs.repo.refs.headCommit()).to.equal(second.manifest.commit)
    expect(dumpDatabase(consumerDb)).to.deep.equal(dumpDatabase(db))
    const again = await pullRelease(consumerWs, {manifest: secondManifest, remote: 'production'})
    expect(again.merge?.outcome).to.equal('up-to-date')

    // CI re-running the first release's publish (its merge commit checked out): production
    // serves a later release that contains it; refused (not "nothing changed"), nothing written.
    const ci = await ciCheckout(dir, firstMerge)
    const before = await listing(production)
    server.requestLog.reset()
    let refused: (Error & {code?: string}) | undefined
    await publishRelease({cwd: ci, production, productionConfig: {endpoint: server.endpoint}}).catch((error: Error) => (refused = error))
    expect(refused?.code).to.equal('RELEASE_SUPERSEDED')
    expect(refused?.message).to.contain(`is older than what production/main serves (${second.manifest.commit.slice(0, 10)}`)
    expect(server.requestLog.count('PUT')).to.equal(0)
    expect((await branchOn(production))).to.equal(second.manifest.commit)
    expect(await listing(production)).to.deep.equal(before)
    expect(staging).to.be.a('string')
  })

  it('a manifest naming a commit staging lacks fails clearly and production is unchanged', async () => {
    const {dir, db, ws} = await releaseProject()
    const {production} = await withRemotes(ws)
    const first = await prepareRelease(ws, {staging: 'staging', cwd: dir})
    await mergeIntoMain(dir, first.gitBranch)
    await publishRelease({cwd: dir, production: 'production'})

    // A commit that was never pushed, written into a manifest by hand and merged.
    setGeneration(db, 1, 1, 8001)
    await commit(ws, {message: 'never staged', author})
    const unstaged = (await ws.repo.refs.headCommit())!
    const forged = {...first.manifest, commit: unstaged, message: 'never staged'}
    fs.writeFileSync(path.join(dir, MANIFEST_FILE), serializeManifest(forged))
    await git.add({fs, dir, filepath: MANIFEST_FILE})
    await git.commit({fs, dir, message: 'hand-made release', author: gitAuthor})

    const before = await listing(production)
    let failure: (Error & {code?: string}) | undefined
    try {
      await publishRelease({cwd: dir, production: 'production'})
    } catch (error) {
      failure = error as Error & {code?: string}
    }
    expect(failure?.code).to.equal('OBJECT_MISSING')
    expect(failure?.message).to.contain(`commit ${unstaged.slice(0, 10)} is not on staging remote "staging"`)
    expect(failure?.message).to.contain('production/main was not changed')
    expect(await listing(production)).to.deep.equal(before)
    expect((await branchOn(production))).to.equal(first.manifest.commit)
    const logged = (await readSyncLog(ws.repo, 'production')).filter((e) => e.op === 'publish')
    expect(logged.map((e) => e.result)).to.deep.equal(['ok', 'error'])
    expect(logged[1].error).to.contain('is not on staging')

    // Counts that do not match the commit are refused too (a manifest edited by hand).
    fs.writeFileSync(path.join(dir, MANIFEST_FILE), serializeManifest({...first.manifest, tiles: 31, createdAt: new Date().toISOString()}))
    await git.add({fs, dir, filepath: MANIFEST_FILE})
    await git.commit({fs, dir, message: 'wrong counts', author: gitAuthor})
    const production2 = production.replace('rel-production', 'rel-production') + '-other'
    try {
      await publishRelease({cwd: dir, production: production2, productionConfig: {endpoint: server.endpoint}})
      expect.fail('published a manifest with wrong counts')
    } catch (error) {
      expect((error as {code?: string}).code).to.equal('BAD_ARGUMENT')
      expect((error as Error).message).to.contain('the manifest says tiles 31, the commit has tiles 30')
    }
    expect(await listing(production2)).to.deep.equal([])
  })

  it('publishing a release reads the same number of objects from production however long its history is', async () => {
    const {dir, db, ws} = await releaseProject()
    await withRemotes(ws)
    const reads: number[] = []
    for (let i = 0; i < 5; i++) {
      if (i > 0) {
        setGeneration(db, i, 0, 9300 + i)
        await commit(ws, {message: `release ${i}`, author})
      }
      const prepared = await prepareRelease(ws, {staging: 'staging', cwd: dir, gitBranch: `release/n${i}`})
      await mergeIntoMain(dir, prepared.gitBranch)
      server.requestLog.reset()
      const p = await publishRelease({cwd: dir, production: 'production'})
      expect(p.outcome).to.equal('published')
      reads.push(server.requestLog.count('GET', '/rel-production/'))
    }
    // Deciding whether the release is new, older or a step forward costs production the same
    // few reads whatever its history: not one more per release already there.
    expect(new Set(reads.slice(1)).size, `GETs on production per publish: ${reads.join(', ')}`).to.equal(1)
    // One of them lists production's packs/ (what it holds is learnt from its pack indexes, cached here).
    expect(reads[1]).to.be.at.most(7)
  })

  it('prepare refuses before pushing when git has staged changes or the branch exists', async () => {
    const {dir, ws} = await releaseProject()
    const {staging} = await withRemotes(ws)
    fs.writeFileSync(path.join(dir, 'README.md'), '# changed\n')
    await git.add({fs, dir, filepath: 'README.md'})
    try {
      await prepareRelease(ws, {staging: 'staging', cwd: dir})
      expect.fail('prepared over staged changes')
    } catch (error) {
      expect((error as {code?: string}).code).to.equal('DIRTY')
      expect((error as Error).message).to.contain('README.md')
    }
    expect(await listing(staging)).to.deep.equal([])
    expect(await git.currentBranch({fs, dir})).to.equal('main')
    await git.commit({fs, dir, message: 'readme', author: gitAuthor})
    await git.branch({fs, dir, ref: 'release/taken'})
    try {
      await prepareRelease(ws, {staging: 'staging', cwd: dir, gitBranch: 'release/taken'})
      expect.fail('prepared onto an existing branch')
    } catch (error) {
      expect((error as {code?: string}).code).to.equal('REF_EXISTS')
    }
    expect(await listing(staging)).to.deep.equal([])
  })
})

describe('release commands through the CLI (directory remotes)', function () {
  this.timeout(180_000)

  it('release prepare, git merge, release publish (twice), clone --release, pull --release, remote log', async () => {
    const {dir, db} = makeProject()
    await git.init({fs, dir, defaultBranch: 'main'})
    fs.writeFileSync(path.join(dir, '.gitignore'), '.tilesync/\ngenerations/\n')
    await git.add({fs, dir, filepath: '.gitignore'})
    await git.commit({fs, dir, message: 'start', author: gitAuthor})
    const remotes = tmpDir('release-remotes')
    expect(cli(dir, ['init']).code).to.equal(0)
    expect(cli(dir, ['commit', '-m', 'first']).code).to.equal(0)
    expect(cli(dir, ['remote', 'add', 'staging', path.join(remotes, 'staging')]).code).to.equal(0)
    expect(cli(dir, ['remote', 'add', 'production', path.join(remotes, 'production')]).code).to.equal(0)

    const prep = cli(dir, ['release', 'prepare', '--staging', 'staging', '--name', 'town'])
    expect(prep.code, prep.stderr).to.equal(0)
    const branch = /git branch (release\/town-[0-9a-f]{10})/.exec(prep.stdout)?.[1]
    expect(branch, prep.stdout).to.be.a('string')
    expect(prep.stdout).to.contain('Next steps:')
    expect(prep.stdout).to.contain(`git push -u origin ${branch}`)
    await git.checkout({fs, dir, ref: 'main', force: true})
    await git.merge({fs, dir, ours: 'main', theirs: branch!, author: gitAuthor})
    await git.checkout({fs, dir, ref: 'main', force: true})

    const pub = cliJson<{outcome: string; objects: number}>(dir, ['release', 'publish', '--production', 'production'])
    expect(pub.outcome).to.equal('published')
    expect(pub.objects).to.be.greaterThan(30)
    const again = cli(dir, ['release', 'publish', '--production', 'production'])
    expect(again.code).to.equal(0)
    expect(again.stdout).to.contain('Already published')

    const target = path.join(tmpDir('cli-release-clone'), 'town')
    const cl = cli(dir, ['clone', '--release', MANIFEST_FILE, path.join(remotes, 'production'), target])
    expect(cl.code, cl.stderr).to.equal(0)
    expect(cl.stdout).to.contain('Release "town"')
    expect(dumpDatabase(path.join(target, 'generations/v01/quadrants.db'))).to.deep.equal(dumpDatabase(db))

    // pull --release reads the manifest at git HEAD of the repository around the clone.
    setGeneration(db, 0, 0, 9100)
    expect(cli(dir, ['commit', '-m', 'second']).code).to.equal(0)
    const prep2 = cli(dir, ['release', 'prepare', '--staging', 'staging', '--name', 'town', '--git-branch', 'release/two'])
    expect(prep2.code, prep2.stderr).to.equal(0)
    await git.checkout({fs, dir, ref: 'main', force: true})
    await git.merge({fs, dir, ours: 'main', theirs: 'release/two', author: gitAuthor})
    await git.checkout({fs, dir, ref: 'main', force: true})
    expect(cli(dir, ['release', 'publish', '--production', 'production']).code).to.equal(0)
    const pulled = cli(target, ['pull', '--release', '--manifest', path.join(dir, MANIFEST_FILE)])
    expect(pulled.code, pulled.stderr).to.equal(0)
    expect(pulled.stdout).to.contain('Fast-forward')
    expect(dumpDatabase(path.join(target, 'generations/v01/quadrants.db'))).to.deep.equal(dumpDatabase(db))

    const log = cli(dir, ['remote', 'log', 'production'])
    expect(log.code).to.equal(0)
    const lines = log.stdout.trim().split('\n')
    expect(lines.filter((l) => / publish /.test(l))).to.have.length(3)
    expect(lines.at(-1)).to.match(/publish +production\/main +[0-9a-f]{10} -> [0-9a-f]{10} +\d+ objects, .* ok$/)
    const json = cliJson<{entries: Array<{op: string; remote: string}>}>(dir, ['remote', 'log', 'staging'])
    expect(json.entries.map((e) => e.op)).to.deep.equal(['push', 'push'])
  })
})
