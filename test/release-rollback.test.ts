import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import git from 'isomorphic-git'

import {readSyncLog} from '../src/ops/sync-log.js'
import {pruneRemote} from '../src/ops/prune.js'
import {MANIFEST_FILE, parseManifest, serializeManifest} from '../src/release/manifest.js'
import {Workspace} from '../src/workspace/workspace.js'
import {cli, cliJson} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {dumpDatabase, makeProject, tmpDir} from './support/fixtures.js'

const gitAuthor = {name: 'Reviewer', email: 'r@example.com'}

/** git with no user-wide or system-wide ignore rules: only the repository's own .gitignore counts. */
function isolatedGitEnv(): NodeJS.ProcessEnv {
  const home = tmpDir('git-home')
  return {GIT_CONFIG_GLOBAL: path.join(home, 'gitconfig'), GIT_CONFIG_NOSYSTEM: '1', XDG_CONFIG_HOME: home, HOME: home}
}

/** A data project in a git repository, tilesync initialised, with staging and production directory remotes. */
async function project(): Promise<{dir: string; db: string; remotes: string}> {
  const {dir, db} = makeProject()
  await git.init({fs, dir, defaultBranch: 'main'})
  fs.writeFileSync(path.join(dir, '.gitignore'), '.tilesync/\ngenerations/\n.env\n')
  await git.add({fs, dir, filepath: '.gitignore'})
  await git.commit({fs, dir, message: 'start', author: gitAuthor})
  const remotes = tmpDir('rollback-remotes')
  for (const args of [['init'], ['commit', '-m', 'first'], ['remote', 'add', 'staging', path.join(remotes, 'staging')], ['remote', 'add', 'production', path.join(remotes, 'production')]]) {
    const r = cli(dir, args)
    expect(r.code, r.stderr).to.equal(0)
  }
  return {dir, db, remotes}
}

/** Review and merge: the PR branch merged into main, main checked out. */
async function merge(dir: string, branch: string): Promise<void> {
  await git.checkout({fs, dir, ref: 'main', force: true})
  await git.merge({fs, dir, ours: 'main', theirs: branch, author: gitAuthor, message: `Merge ${branch}`})
  await git.checkout({fs, dir, ref: 'main', force: true})
}

/** prepare -> merge -> publish, through the CLI; returns the released commit. */
async function release(dir: string, gitBranch: string, extra: string[] = []): Promise<{commit: string; stdout: string}> {
  const prep = cli(dir, ['release', 'prepare', '--staging', 'staging', '--name', 'town', '--git-branch', gitBranch, ...extra])
  expect(prep.code, prep.stderr).to.equal(0)
  await merge(dir, gitBranch)
  const pub = cli(dir, ['release', 'publish', '--production', 'production'])
  expect(pub.code, pub.stderr).to.equal(0)
  const m = parseManifest(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8'), 'manifest')
  return {commit: m.commit, stdout: prep.stdout}
}

async function productionTip(dir: string): Promise<string | null> {
  const ws = await Workspace.open(dir)
  const {openRemote} = await import('../src/ops/remotes.js')
  const r = await openRemote(ws.repo, 'production')
  try {
    return (await r.readBranch('main'))?.commit ?? null
  } finally {
    await r.close()
  }
}

describe('release rollback through a pull request (directory remotes, CLI)', function () {
  this.timeout(240_000)

  it('an older manifest merged by hand is refused with exit 1; `release rollback --to` prepares the PR that moves production to exactly that commit', async () => {
    const {dir, db, remotes} = await project()
    const first = await release(dir, 'release/one')
    const firstDump = dumpDatabase(db)
    const firstManifest = fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')
    setGeneration(db, 0, 0, 7001)
    expect(cli(dir, ['commit', '-m', 'second']).code).to.equal(0)
    const second = await release(dir, 'release/two')
    expect(await productionTip(dir)).to.equal(second.commit)

    // A PR that restores the older manifest (what `git revert` of the merge gives), merged by hand.
    await git.branch({fs, dir, ref: 'restore', checkout: true})
    fs.writeFileSync(path.join(dir, MANIFEST_FILE), firstManifest)
    await git.add({fs, dir, filepath: MANIFEST_FILE})
    await git.commit({fs, dir, message: 'restore the first release', author: gitAuthor})
    const ws = await Workspace.open(dir)
    const logBefore = (await readSyncLog(ws.repo)).length
    const refused = cli(dir, ['release', 'publish', '--production', 'production'])
    expect(refused.code, refused.stdout).to.equal(1)
    expect(refused.stdout).to.not.contain('nothing changed')
    expect(refused.stdout).to.not.contain('Verified')
    expect(refused.stderr).to.contain(`release "town" (commit ${first.commit.slice(0, 10)}) is older than what production/main serves`)
    expect(refused.stderr).to.contain(`tilesync release rollback --to ${first.commit.slice(0, 10)}`)
    const refusedJson = cli(dir, ['release', 'publish', '--production', 'production', '--json'])
    expect(refusedJson.code).to.equal(1)
    expect(JSON.parse(refusedJson.stdout).error.code).to.equal('RELEASE_SUPERSEDED')
    expect(await productionTip(dir)).to.equal(second.commit)
    // The sync log says what happened: two refused publishes, no promotion attempted.
    const refusedLog = (await readSyncLog(ws.repo)).slice(logBefore)
    expect(refusedLog.map((e) => [e.op, e.result])).to.deep.equal([['publish', 'error'], ['publish', 'error']])
    expect(refusedLog[0].error).to.contain('is older than what production/main serves')
    await git.checkout({fs, dir, ref: 'main', force: true})

    // The rollback PR: a manifest naming the first commit, marked as a rollback from the second.
    const rb = cli(dir, ['release', 'rollback', '--to', first.commit.slice(0, 12), '--git-branch', 'release/undo'])
    expect(rb.code, rb.stderr).to.equal(0)
    expect(rb.stdout).to.contain(`goes back from ${second.commit.slice(0, 10)} to ${first.commit.slice(0, 10)}`)
    expect(rb.stdout).to.contain('tiles: 0 added, 1 modified, 0 deleted')
    const proposed = await git.log({fs, dir, ref: 'release/undo', depth: 1})
    expect(proposed[0].commit.message).to.match(/^Roll back town to tilesync commit [0-9a-f]{10}/)
    const rbManifest = parseManifest(Buffer.from((await git.readBlob({fs, dir, oid: proposed[0].oid, filepath: MANIFEST_FILE})).blob).toString('utf8'), 'rollback')
    expect(rbManifest).to.include({commit: first.commit, branch: 'main'})
    expect(rbManifest.rollback).to.deep.equal({from: second.commit})
    expect(await productionTip(dir)).to.equal(second.commit)

    // A consumer that pulled the second release gets the first one back only by checkout, and is told so.
    const consumer = path.join(tmpDir('consumer'), 'c')
    expect(cli(dir, ['clone', path.join(remotes, 'production'), consumer]).code).to.equal(0)
    const undoManifest = path.join(tmpDir('undo-manifest'), MANIFEST_FILE)
    fs.writeFileSync(undoManifest, serializeManifest(rbManifest))

    await merge(dir, 'release/undo')
    const dry = cli(dir, ['release', 'publish', '--production', 'production', '--dry-run'])
    expect(dry.code, dry.stderr).to.equal(0)
    expect(dry.stdout).to.contain('Would roll back production/main')
    expect(await productionTip(dir)).to.equal(second.commit)
    const pub = cli(dir, ['release', 'publish', '--production', 'production'])
    expect(pub.code, pub.stderr).to.equal(0)
    expect(pub.stdout).to.contain(`Rolled back production/main: ${second.commit.slice(0, 10)} -> ${first.commit.slice(0, 10)}`)
    expect(pub.stdout).to.contain('Verified on staging remote')
    expect(await productionTip(dir)).to.equal(first.commit)
    const log = (await readSyncLog(ws.repo)).filter((e) => e.op === 'publish' && e.result === 'ok').at(-1)!
    expect([log.from, log.to]).to.deep.equal([second.commit, first.commit])

    // Again: up to date, exit 0, and nothing claimed about staging (nothing was read there).
    const again = cli(dir, ['release', 'publish', '--production', 'production'])
    expect(again.code, again.stderr).to.equal(0)
    expect(again.stdout).to.contain('Already published')
    expect(again.stdout).to.not.contain('Verified')

    const consumerPull = cli(consumer, ['pull', '--release', '--manifest', undoManifest])
    expect(consumerPull.code).to.equal(1)
    expect(consumerPull.stderr).to.contain(`\`tilesync checkout ${first.commit.slice(0, 10)}\``)

    // A clone of production is the first release's data.
    const target = path.join(tmpDir('rollback-clone'), 't')
    const cl = cli(dir, ['clone', '--release', MANIFEST_FILE, path.join(remotes, 'production'), target])
    expect(cl.code, cl.stderr).to.equal(0)
    expect(dumpDatabase(path.join(target, 'generations/v01/quadrants.db'))).to.deep.equal(firstDump)

    // A rollback prepared against a release production no longer serves is refused, production unchanged.
    const stale = {...rbManifest, createdAt: new Date().toISOString()}
    fs.writeFileSync(path.join(dir, MANIFEST_FILE), serializeManifest({...stale, commit: second.commit, tiles: stale.tiles, rollback: {from: second.commit}}))
    await git.add({fs, dir, filepath: MANIFEST_FILE})
    await git.commit({fs, dir, message: 'stale rollback', author: gitAuthor})
    const staleRun = cli(dir, ['release', 'publish', '--production', 'production', '--json'])
    expect(staleRun.code).to.equal(1)
    expect(JSON.parse(staleRun.stdout).error.code).to.equal('REMOTE_MOVED')
    expect(JSON.parse(staleRun.stdout).error.message).to.contain(`was prepared against production/main at ${second.commit.slice(0, 10)}`)
    expect(await productionTip(dir)).to.equal(first.commit)
  })

  it('release list / status say which releases exist and which one production serves; a pruned release says it was pruned', async () => {
    const {dir, db, remotes} = await project()
    const first = await release(dir, 'release/one')
    setGeneration(db, 1, 1, 7101)
    expect(cli(dir, ['commit', '-m', 'second']).code).to.equal(0)
    const second = await release(dir, 'release/two')

    const list = cliJson<{releases: Array<{state: string; manifest: {commit: string}}>; productionCommit: string}>(dir, ['release', 'list'])
    expect(list.releases.map((r) => [r.manifest.commit, r.state])).to.deep.equal([[second.commit, 'live'], [first.commit, 'available']])
    expect(list.productionCommit).to.equal(second.commit)
    const text = cli(dir, ['release', 'list'])
    expect(text.stdout).to.contain(`${second.commit.slice(0, 10)}`)
    expect(text.stdout).to.match(/\[live\]/)
    const status = cliJson<{status: string; serving: {manifest: {commit: string}}}>(dir, ['release', 'status'])
    expect(status.status).to.equal('in-sync')
    expect(status.serving.manifest.commit).to.equal(second.commit)

    // A third release prepared and merged but not yet published: pending.
    setGeneration(db, 2, 2, 7102)
    expect(cli(dir, ['commit', '-m', 'third']).code).to.equal(0)
    expect(cli(dir, ['release', 'prepare', '--staging', 'staging', '--name', 'town', '--git-branch', 'release/three']).code).to.equal(0)
    await merge(dir, 'release/three')
    const pending = cli(dir, ['release', 'status'])
    expect(pending.code, pending.stderr).to.equal(0)
    expect(pending.stdout).to.contain(`production/main serves release ${second.commit.slice(0, 10)}`)
    expect(pending.stdout).to.contain('Pending: `tilesync release publish` would move production')
    expect(cli(dir, ['release', 'publish', '--production', 'production']).code).to.equal(0)

    // Production pruned to its last commit: the first release is gone from it, and says so.
    const ws = await Workspace.open(dir)
    await pruneRemote(ws.repo, 'production', {keepLast: 1, graceMs: 0})
    const afterPrune = cliJson<{releases: Array<{state: string}>}>(dir, ['release', 'list'])
    expect(afterPrune.releases.map((r) => r.state)).to.deep.equal(['live', 'pruned', 'pruned'])
    const firstManifest = path.join(tmpDir('old-manifest'), MANIFEST_FILE)
    const oldText = (await git.log({fs, dir, filepath: MANIFEST_FILE})).at(-1)!
    fs.writeFileSync(firstManifest, Buffer.from((await git.readBlob({fs, dir, oid: oldText.oid, filepath: MANIFEST_FILE})).blob))
    expect(parseManifest(fs.readFileSync(firstManifest, 'utf8'), 'first').commit).to.equal(first.commit)
    const cl = cli(dir, ['clone', '--release', firstManifest, path.join(remotes, 'production'), path.join(tmpDir('pruned-clone'), 'c')])
    expect(cl.code).to.equal(1)
    expect(cl.stderr).to.contain(`release "town" (commit ${first.commit.slice(0, 10)}) was pruned from`)
    expect(cl.stderr).to.not.contain('once `tilesync release publish` has run')

    // A rollback to the pruned release: production gets its objects again from staging and
    // serves exactly that commit; a clone of production is its data.
    const firstDump = await (async () => {
      const c = path.join(tmpDir('staging-clone'), 's')
      expect(cli(dir, ['clone', '--release', firstManifest, path.join(remotes, 'staging'), c]).code).to.equal(0)
      return dumpDatabase(path.join(c, 'generations/v01/quadrants.db'))
    })()
    const rb = cli(dir, ['release', 'rollback', '--to', firstManifest, '--git-branch', 'release/back'])
    expect(rb.code, rb.stderr).to.equal(0)
    await merge(dir, 'release/back')
    const pub = cliJson<{outcome: string; objects: number; commit: string}>(dir, ['release', 'publish', '--production', 'production'])
    expect(pub.outcome).to.equal('rolled-back')
    expect(pub.objects).to.be.greaterThan(0)
    expect(await productionTip(dir)).to.equal(first.commit)
    const back = path.join(tmpDir('rolled-back-clone'), 'c')
    const cl3 = cli(dir, ['clone', '--release', MANIFEST_FILE, path.join(remotes, 'production'), back])
    expect(cl3.code, cl3.stderr).to.equal(0)
    expect(dumpDatabase(path.join(back, 'generations/v01/quadrants.db'))).to.deep.equal(firstDump)
    expect(cli(back, ['fsck']).code).to.equal(0)
  })

  it('release prepare writes what changed since the last release into the commit it proposes (per layer, diff --stat, --html report)', async () => {
    const {dir, db} = await project()
    const first = await release(dir, 'release/one')
    expect(first.stdout).to.contain('Changes: first release, every tile is new.')
    expect(first.stdout).to.contain('tiles: 30 added, 0 modified, 0 deleted')
    setGeneration(db, 0, 0, 7201)
    setGeneration(db, 3, 2, 7202)
    expect(cli(dir, ['commit', '-m', 'two new generations']).code).to.equal(0)
    const prep = cli(dir, ['release', 'prepare', '--staging', 'staging', '--name', 'town', '--git-branch', 'release/two', '--html'])
    expect(prep.code, prep.stderr).to.equal(0)
    const [proposal] = await git.log({fs, dir, ref: 'release/two', depth: 1})
    const message = proposal.commit.message
    expect(message).to.contain(`Changes since the last release (tilesync commit ${first.commit.slice(0, 10)}):`)
    // (0,0) gets a new generation; (3,2) is outside the 6x5 grid's rows: a new tile with a generation only.
    expect(message).to.contain('  tiles: 1 added, 1 modified, 0 deleted')
    expect(message).to.match(/ {2}layer generation: 1 added, 1 modified, 0 removed/)
    expect(message).to.match(/ {2}layer render: 0 added, 0 modified, 0 removed/)
    expect(message).to.contain('--stat:')
    expect(message).to.contain('tiles (quadrants): 1 added, 1 modified, 0 deleted')
    // The --html report is a file of the proposed commit, beside the manifest.
    const html = Buffer.from((await git.readBlob({fs, dir, oid: proposal.oid, filepath: 'tilesync.release.html'})).blob).toString('utf8')
    expect(html).to.match(/^<!doctype html>/i)
    expect(html.length).to.be.greaterThan(1000)
  })

  it('publish to a bucket URL without an endpoint names its own --endpoint flag', async () => {
    const {dir} = await project()
    expect(cli(dir, ['release', 'prepare', '--staging', 'staging', '--name', 'town', '--git-branch', 'release/one']).code).to.equal(0)
    await merge(dir, 'release/one')
    const env = {AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_REGION: '', AWS_DEFAULT_REGION: '', AWS_ENDPOINT_URL_S3: '', AWS_ENDPOINT_URL: ''}
    const r = cli(dir, ['release', 'publish', '--production', 's3://tiles-prod/town'], env)
    expect(r.code).to.equal(1)
    expect(r.stderr).to.match(/production remote "production-2" \(s3:\/\/tiles-prod\/town\) has no endpoint/)
    expect(r.stderr).to.contain('`--endpoint URL`')
    expect(r.stderr).to.not.contain('remote add')
  })

  it('init and release prepare warn when git does not ignore .tilesync/ or .env', async () => {
    const env = isolatedGitEnv()
    const {dir} = makeProject()
    await git.init({fs, dir, defaultBranch: 'main'})
    fs.writeFileSync(path.join(dir, '.env'), 'R2_ACCESS_KEY_ID=x\n')
    fs.writeFileSync(path.join(dir, '.gitignore'), 'generations/\n')
    const init = cli(dir, ['init'], env)
    expect(init.code, init.stderr).to.equal(0)
    expect(init.stderr).to.contain('warning: .tilesync/ is not ignored by the git repository')
    expect(init.stderr).to.contain('warning: .env is not ignored by the git repository')
    const json = cli(dir, ['init', '--json'], env)
    expect(json.code).to.equal(1) // already a repository: the warnings come with a successful init only

    // Ignored: no warning.
    const other = makeProject()
    await git.init({fs, dir: other.dir, defaultBranch: 'main'})
    fs.writeFileSync(path.join(other.dir, '.env'), 'R2_ACCESS_KEY_ID=x\n')
    fs.writeFileSync(path.join(other.dir, '.gitignore'), 'generations/\n.tilesync\n.env\n')
    const quiet = cli(other.dir, ['init'], env)
    expect(quiet.code, quiet.stderr).to.equal(0)
    expect(quiet.stderr).to.not.contain('warning')

    // release prepare warns too (and still proposes the release).
    await git.add({fs, dir, filepath: '.gitignore'})
    await git.commit({fs, dir, message: 'start', author: gitAuthor})
    expect(cli(dir, ['commit', '-m', 'first'], env).code).to.equal(0)
    expect(cli(dir, ['remote', 'add', 'staging', path.join(tmpDir('warn-remotes'), 'staging')], env).code).to.equal(0)
    const prep = cli(dir, ['release', 'prepare', '--staging', 'staging', '--git-branch', 'release/w'], env)
    expect(prep.code, prep.stderr).to.equal(0)
    expect(prep.stderr).to.contain('warning: .tilesync/ is not ignored')
    expect(prep.stderr).to.contain('warning: .env is not ignored')
  })
})
