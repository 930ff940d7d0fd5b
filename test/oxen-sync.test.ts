import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import nock from 'nock'

import {switchBranch} from '../src/ops/branches.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {fetchRemote} from '../src/ops/fetch.js'
import {initRepository} from '../src/ops/init.js'
import {log} from '../src/ops/log.js'
import {mergeCommit} from '../src/ops/merge.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import type {OxenRetryEvent} from '../src/remote/oxen/oxen-http.js'
import type {OxenTuning} from '../src/remote/oxen/oxen-transport.js'
import {BIN, type CliRun} from './support/cli.js'
import {generationOf, setGeneration, setNotes} from './support/edit.js'
import {dumpDatabase, makeProject, png, tmpDir, withDb} from './support/fixtures.js'
import {type OxenHub, startOxenHub} from './support/oxen-hub.js'
import {runTransportConformance} from './support/transport-conformance.js'

// nock patches fetch on import; it is switched on only around the one test that needs it.
nock.restore()

const NS = 'tiles'
const author = {name: 'Ada Tiler', email: 'ada@example.com'}
const md5_8 = (b: Buffer) => createHash('md5').update(b).digest('hex').slice(0, 8)

let hub: OxenHub
let counter = 0

before(async () => {
  hub = await startOxenHub()
})
after(async () => {
  await hub.close()
})

const tuning = (extra: OxenTuning = {}): OxenTuning => ({token: hub.token, backoffMs: 5, env: {}, ...extra})

async function expectCode(p: Promise<unknown>, code: string, match?: RegExp): Promise<Error> {
  try {
    await p
  } catch (error) {
    expect((error as {code?: string}).code, (error as Error).message).to.equal(code)
    if (match) expect((error as Error).message).to.match(match)
    return error as Error
  }
  return expect.fail(`expected ${code}`)
}

/** A project committed once and pushed to a new hub repository. */
async function pushed(): Promise<{ws: Workspace; db: string; repo: string}> {
  const repo = `city-${++counter}`
  const {dir, db} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  await addRemote(ws.repo, 'hub', `oxen://${NS}/${repo}`, {host: hub.host})
  await push(ws, {remote: 'hub', transport: tuning()})
  return {ws, db, repo}
}

async function cloneOf(repo: string): Promise<{ws: Workspace; db: string}> {
  const dir = path.join(tmpDir('clone'), 'c')
  const r = await clone({url: `oxen://${NS}/${repo}`, dir, remote: {host: hub.host}, transport: tuning()})
  const ws = await Workspace.open(dir)
  // The clone's remote is "origin"; tests address it as "hub" like the original.
  ws.repo.config.remotes.hub = ws.repo.config.remotes.origin
  await ws.repo.writeConfig()
  await fs.promises.cp(ws.repo.layout.remoteState('origin'), ws.repo.layout.remoteState('hub'), {recursive: true})
  await fs.promises.cp(ws.repo.layout.ref('refs/remotes/origin'), ws.repo.layout.ref('refs/remotes/hub'), {recursive: true})
  return {ws, db: path.join(dir, r.database)}
}

/** Dataset paths staged by workspace uploads since the last resetLog. */
function uploaded(): string[] {
  return hub.requests
    .filter((r) => r.method === 'POST' && /\/workspaces\/[^/]+\/files/.test(r.path) && r.status === 200)
    .flatMap((r) => {
      const dir = r.path.replace(/^.*\/workspaces\/[^/]+\/files\/?/, '')
      return (r.parts ?? []).map((p) => (dir ? `${dir}/${p.filename}` : p.filename!))
    })
}

/**
 * The CLI as a separate process, awaited asynchronously: the fake hub runs in this process,
 * so a synchronous spawn would stop it from answering.
 */
function cli(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd, env: {...process.env, TILESYNC_AUTHOR_NAME: 'Cli Test', TILESYNC_AUTHOR_EMAIL: 'cli@example.com', ...env}, stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? -1, stdout, stderr}))
  })
}

const ids = async (ws: Workspace) => (await log(ws)).map((e) => e.id)

runTransportConformance('oxen (test hub)', () => ({
  corruptCodes: ['BAD_DATASET'],
  async newRemote() {
    const repo = `conformance-${++counter}`
    return {
      url: `oxen://${NS}/${repo}`,
      extra: {host: hub.host},
      tuning: tuning(),
      written: async () => uploaded(),
      resetWritten: async () => hub.resetLog(),
      isUploadOf: (entry, blob) => entry.endsWith(`_${md5_8(blob)}.png`),
      interrupt: async () => {
        // The renders are uploaded after the generated images: fail that request once.
        hub.failNext({method: 'POST', path: /\/files\/renders$/, status: 400, body: {status: 'error', status_message: 'bad_request'}})
        return async () => {}
      },
      tamper: async (blob, how) => {
        const file = [...hub.files(NS, repo)!.keys()].find((p) => p.endsWith(`_${md5_8(blob)}.png`))!
        const bytes = hub.files(NS, repo)!.get(file)!
        hub.tamperFile(NS, repo, file, how === 'append' ? Buffer.concat([bytes, Buffer.from('tampered')]) : bytes.subarray(0, bytes.length >> 1))
      },
    }
  },
}))

describe('oxen remote: tile history as an oxen dataset', function () {
  this.timeout(120_000)

  it('push publishes the browsable layout; pushing again sends nothing; 3 changed tiles send 3 PNGs and the small files', async () => {
    const {ws, db, repo} = await pushed()
    const files = hub.files(NS, repo)!
    const pngs = (dir: string) => [...files.keys()].filter((p) => p.startsWith(`${dir}/`) && p.endsWith('.png'))
    const generated = withDb(db, (d) => (d.prepare('SELECT count(*) AS n FROM quadrants WHERE generation IS NOT NULL').get() as {n: number}).n)
    expect(pngs('renders')).to.have.length(30)
    expect(pngs('quadrants')).to.have.length(generated)
    const g = generationOf(db, -3, -2)
    if (g) expect(files.get(`quadrants/-003_-002_${md5_8(g)}.png`)).to.deep.equal(g)
    const csv = files.get('generations.csv')!.toString().split('\n')
    expect(csv[0]).to.equal('render,quadrant,x,y,hash_render,hash_quadrant')
    expect(csv.filter(Boolean)).to.have.length(31)
    expect(files.get('README.md')!.toString()).to.match(/\| tiles \| 30 \|/)
    expect(JSON.parse(files.get('tilesync/manifest.json')!.toString()).commit.id).to.equal(await ws.resolve('HEAD'))
    const head = hub.head(NS, repo)!
    expect([head.message, head.author, head.email]).to.deep.equal(['first', author.name, author.email])
    expect(hub.workspaceCount(NS, repo)).to.equal(0)

    hub.resetLog()
    const again = await push(ws, {remote: 'hub', transport: tuning()})
    expect(again.upToDate).to.equal(true)
    expect(uploaded()).to.deep.equal([])

    setGeneration(db, 0, 0, 101)
    setGeneration(db, 1, 0, 102)
    setGeneration(db, -2, 1, 103)
    await commit(ws, {message: 'three tiles', author})
    hub.resetLog()
    const dry = await push(ws, {remote: 'hub', dryRun: true, transport: tuning()})
    expect([dry.dryRun, dry.commits, dry.objects]).to.deep.equal([true, 1, 3 + 3 + 2])
    expect(uploaded()).to.deep.equal([])
    const r = await push(ws, {remote: 'hub', transport: tuning()})
    expect(r.commits).to.equal(1)
    const sent = uploaded()
    expect(sent.filter((p) => p.endsWith('.png')).sort()).to.deep.equal([
      `quadrants/-002_0001_${md5_8(png(103))}.png`, `quadrants/0000_0000_${md5_8(png(101))}.png`, `quadrants/0001_0000_${md5_8(png(102))}.png`,
    ])
    const small = sent.filter((p) => !p.endsWith('.png'))
    expect(small.filter((p) => !p.startsWith('tilesync/rows/quadrants/')).sort()).to.deep.equal(['README.md', 'generations.csv', 'tilesync/manifest.json'])
    expect(small.filter((p) => p.startsWith('tilesync/rows/quadrants/')).sort()).to.deep.equal(['tilesync/rows/quadrants/-1_0.jsonl', 'tilesync/rows/quadrants/0_0.jsonl'])
    expect(r.objects).to.equal(sent.length)

    // A change to another column of one tile: no image, no CSV.
    setNotes(db, 2, 2, 'checked')
    await commit(ws, {message: 'a note', author})
    hub.resetLog()
    await push(ws, {remote: 'hub', transport: tuning()})
    expect(uploaded().sort()).to.deep.equal(['README.md', 'tilesync/manifest.json', 'tilesync/rows/quadrants/0_0.jsonl'])
    // Files of replaced images stay (additive).
    expect([...hub.files(NS, repo)!.keys()].filter((p) => p.startsWith('quadrants/0000_0000_'))).to.have.length(2)
  })

  it('clone gives back the identical database and the same commit ids, merges included', async () => {
    const {ws, db, repo} = await pushed()
    await switchBranch(ws, 'side', {create: true})
    setGeneration(db, 0, 0, 201)
    await commit(ws, {message: 'side edit', author})
    const side = await ws.resolve('HEAD')
    await switchBranch(ws, 'main', {})
    setGeneration(db, 1, 1, 202)
    setNotes(db, -1, -1, 'main note')
    await commit(ws, {message: 'main edit', author})
    const m = await mergeCommit(ws, side, 'side')
    expect(m.outcome).to.equal('merged')
    const r = await push(ws, {remote: 'hub', transport: tuning()})
    expect(r.commits).to.equal(3)

    const c = await cloneOf(repo)
    expect(dumpDatabase(c.db)).to.deep.equal(dumpDatabase(db))
    expect(await ids(c.ws)).to.deep.equal(await ids(ws))
    expect((await status(c.ws)).clean).to.equal(true)
    await expectCode(clone({url: `oxen://${NS}/no-such-repo`, dir: path.join(tmpDir('clone'), 'x'), remote: {host: hub.host}, transport: tuning()}), 'REMOTE_UNKNOWN', /no such repository/)
  })

  it('pull brings a second clone up to date (fast-forward)', async () => {
    const {ws, db, repo} = await pushed()
    const b = await cloneOf(repo)
    setGeneration(db, 2, 1, 301)
    withDb(db, (d) => d.prepare(`UPDATE metadata SET value = '4' WHERE key = 'schema_version'`).run())
    await commit(ws, {message: 'more', author})
    await push(ws, {remote: 'hub', transport: tuning()})
    const p = await pull(b.ws, {remote: 'hub', transport: tuning()})
    expect(p.merge?.outcome).to.equal('fast-forward')
    expect(dumpDatabase(b.db)).to.deep.equal(dumpDatabase(db))
    expect(await ids(b.ws)).to.deep.equal(await ids(ws))
    const f = await fetchRemote(b.ws, {remote: 'hub', transport: tuning()})
    expect(f.branches.map((x) => x.commits)).to.deep.equal([0])
  })

  it('imports a commit made on the hub with other tools (CSV edited, PNG added) as a tilesync commit', async () => {
    const {ws, db, repo} = await pushed()
    const files = hub.files(NS, repo)!
    const img = png(555)
    const name = `quadrants/0001_0001_${md5_8(img)}.png`
    const lines = files.get('generations.csv')!.toString().split('\n')
    const i = lines.findIndex((l) => /,1,1,/.test(l))
    const cells = lines[i].split(',')
    cells[1] = name
    cells[5] = md5_8(img)
    lines[i] = cells.join(',')
    hub.commitDirect(NS, repo, 'main', {'generations.csv': Buffer.from(lines.join('\n')), [name]: img}, 'hand-picked tile 1,1')

    setGeneration(db, 0, 1, 502)
    await commit(ws, {message: 'local edit', author})
    await expectCode(push(ws, {remote: 'hub', transport: tuning()}), 'REMOTE_MOVED', /pull first/)
    const notesBefore = withDb(db, (d) => d.prepare('SELECT notes, lat FROM quadrants WHERE quadrant_x = 1 AND quadrant_y = 1').get())
    const p = await pull(ws, {remote: 'hub', transport: tuning()})
    expect(p.merge?.outcome).to.equal('merged')
    expect(generationOf(db, 1, 1)).to.deep.equal(img)
    expect(withDb(db, (d) => d.prepare('SELECT notes, lat FROM quadrants WHERE quadrant_x = 1 AND quadrant_y = 1').get())).to.deep.equal(notesBefore)
    const entries = await log(ws)
    const foreign = entries.find((e) => e.message === 'hand-picked tile 1,1')!
    expect([foreign.author, foreign.email, foreign.tilesChanged]).to.deep.equal(['someone else', 'else@example.com', 1])
    await push(ws, {remote: 'hub', transport: tuning()})
    // Another machine rebuilds the foreign commit with the same id.
    const c = await cloneOf(repo)
    expect(await ids(c.ws)).to.deep.equal(await ids(ws))
    expect(dumpDatabase(c.db)).to.deep.equal(dumpDatabase(db))
  })

  it('a commit that fails at the hub leaves the branch unchanged; the next push reuses the workspace and uploads nothing again', async () => {
    const {ws, db, repo} = await pushed()
    setGeneration(db, 0, 0, 601)
    await commit(ws, {message: 'commit fails once', author})
    const before = hub.head(NS, repo)!.id
    hub.failNext({method: 'POST', path: /\/merge\//, status: 500, body: {status: 'error', status_message: 'internal_server_error'}})
    await expectCode(push(ws, {remote: 'hub', transport: tuning()}), 'REMOTE_UNREACHABLE')
    expect(hub.head(NS, repo)!.id).to.equal(before)
    hub.resetLog()
    await push(ws, {remote: 'hub', transport: tuning()})
    expect(uploaded()).to.deep.equal([])
    expect(hub.head(NS, repo)!.message).to.equal('commit fails once')
  })

  it('--prune removes files of tiles that no longer exist; without it they stay', async () => {
    const {ws, db, repo} = await pushed()
    withDb(db, (d) => d.prepare('DELETE FROM quadrants WHERE quadrant_x = 2 AND quadrant_y = 2').run())
    setGeneration(db, 0, 0, 701)
    await commit(ws, {message: 'drop 2,2', author})
    await push(ws, {remote: 'hub', transport: tuning()})
    const referenced = () => {
      const files = hub.files(NS, repo)!
      const csv = files.get('generations.csv')!.toString().split('\n').slice(1).filter(Boolean)
      const named = new Set(csv.flatMap((l) => l.split(',').slice(0, 2)).filter(Boolean))
      const images = [...files.keys()].filter((p) => p.endsWith('.png'))
      return {named, images}
    }
    let {named, images} = referenced()
    expect(images.filter((p) => !named.has(p)).length).to.be.at.least(2)
    setNotes(db, 0, 0, 'pruned')
    await commit(ws, {message: 'prune now', author})
    const r = await push(ws, {remote: 'hub', transport: tuning(), prune: true})
    expect((r as {removed?: number}).removed).to.be.at.least(2)
    ;({named, images} = referenced())
    expect(images.sort()).to.deep.equal([...named].sort())
  })

  it('waits out a 429 with Retry-After during a push and succeeds', async () => {
    const {ws, db, repo} = await pushed()
    setGeneration(db, 0, 0, 801)
    await commit(ws, {message: 'busy hub', author})
    const events: OxenRetryEvent[] = []
    nock.activate()
    try {
      const scope = nock(hub.url, {allowUnmocked: true})
        .post(/\/workspaces\/[^/]+\/files\/quadrants/)
        .reply(429, {status: 'error', status_message: 'too_many_requests'}, {'Retry-After': '1'})
      const started = Date.now()
      const r = await push(ws, {remote: 'hub', transport: tuning({onRetry: (e) => events.push(e)})})
      expect(scope.isDone()).to.equal(true)
      expect(r.commits).to.equal(1)
      expect(Date.now() - started).to.be.at.least(900)
    } finally {
      nock.cleanAll()
      nock.restore()
    }
    expect(events.map((e) => [e.reason, e.waitMs])).to.deep.equal([['hub busy (HTTP 429)', 1000]])
    expect(hub.head(NS, repo)!.message).to.equal('busy hub')
  })

  it('the CLI: remote add --host, push with OXEN_API_TOKEN, clone; the token never shows or lands on disk', async () => {
    const repo = `cli-${++counter}`
    const {dir, db} = makeProject()
    const configDir = tmpDir('oxen-config')
    const env = {OXEN_API_TOKEN: hub.token, OXEN_CONFIG_DIR: configDir}
    expect((await cli(dir, ['init'])).code).to.equal(0)
    expect((await cli(dir, ['commit', '-m', 'first'])).code).to.equal(0)
    const add = await cli(dir, ['remote', 'add', 'hub', `oxen://${NS}/${repo}`, '--host', hub.host])
    expect(add.code, add.stderr).to.equal(0)
    const runs = [await cli(dir, ['push', 'hub'], env)]
    expect(runs[0].code, runs[0].stderr).to.equal(0)
    expect(runs[0].stdout).to.match(/Pushed 1 commit/)
    expect(hub.head(NS, repo)!.message).to.equal('first')
    setGeneration(db, 0, 0, 901)
    await cli(dir, ['commit', '-m', 'second'])
    const j = JSON.parse((await cli(dir, ['push', 'hub', '--json'], env)).stdout) as {commits: number; objects: number}
    expect(j.commits).to.equal(1)
    const wrong = 'wrong-token-4b1d-never-echo'
    const refused = await cli(dir, ['fetch', 'hub'], {OXEN_API_TOKEN: wrong, OXEN_CONFIG_DIR: configDir})
    expect(refused.code).to.equal(1)
    expect(refused.stderr).to.match(/refused the oxen API token \(HTTP 401\)/)
    const cloneDir = path.join(tmpDir('cli-clone'), 'c')
    const cl = await cli(tmpDir(), ['clone', `oxen://${NS}/${repo}`, cloneDir, '--host', hub.host], env)
    expect(cl.code, cl.stderr).to.equal(0)
    expect(dumpDatabase(path.join(cloneDir, 'generations/v01/quadrants.db'))).to.deep.equal(dumpDatabase(db))
    runs.push(refused, cl)
    for (const r of runs) {
      for (const secret of [hub.token, wrong]) {
        expect(r.stdout).to.not.contain(secret)
        expect(r.stderr).to.not.contain(secret)
      }
    }
    for (const root of [dir, cloneDir]) {
      for (const file of walk(path.join(root, '.tilesync'))) {
        const text = fs.readFileSync(file).toString('latin1')
        expect(text.includes(hub.token) || text.includes(wrong), file).to.equal(false)
      }
    }
  })
})

function walk(dir: string): string[] {
  const out: string[] = []
  for (const e of fs.readdirSync(dir, {withFileTypes: true})) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...walk(p))
    else out.push(p)
  }
  return out
}
