import {expect} from 'chai'
import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {gzipSync} from 'node:zlib'

import {isTilesyncError, type TilesyncError} from '../src/core/errors.js'
import {xxh3_128Hex} from '../src/dataset/xxh3.js'
import {switchBranch} from '../src/ops/branches.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {encodeMultipart} from '../src/remote/oxen/multipart.js'
import {OxenClient} from '../src/remote/oxen/oxen-client.js'
import type {OxenTuning} from '../src/remote/oxen/oxen-transport.js'
import {Workspace} from '../src/workspace/workspace.js'
import {setGeneration} from './support/edit.js'
import {dumpDatabase, makeProject, png, tmpDir, withDb} from './support/fixtures.js'
import {type OxenHub, startOxenHub} from './support/oxen-hub.js'

/**
 * The oxen remote against a test hub that answers as the real server (0.54) does: branches
 * must exist before a workspace opens on them, files over 10 MiB go through the chunk API,
 * the hub's errors mean what they say, an interrupted push resumes without listing its
 * workspace, and a branch that moved under a push is noticed.
 */

const NS = 'tiles'
const MiB = 1024 * 1024
const author = {name: 'Ada Tiler', email: 'ada@example.com'}
const ME = {message: 'export tiles', author: 'Tess Tile', email: 'tess@example.com'}

let hub: OxenHub
let counter = 0

before(async () => {
  hub = await startOxenHub()
})
after(async () => {
  await hub.close()
})

const tuning = (extra: OxenTuning = {}): OxenTuning => ({token: hub.token, backoffMs: 5, env: {}, ...extra})
const client = (repo: string) => new OxenClient({namespace: NS, repo, token: hub.token, host: hub.url, backoffMs: 5})

async function failure(p: Promise<unknown>): Promise<TilesyncError> {
  try {
    await p
  } catch (err) {
    if (isTilesyncError(err)) return err
    throw err
  }
  throw new Error('expected a TilesyncError')
}

async function pushed(): Promise<{ws: Workspace; db: string; repo: string; dir: string}> {
  const repo = `real-${++counter}`
  const {dir, db} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  await addRemote(ws.repo, 'hub', `oxen://${NS}/${repo}`, {host: hub.host})
  await push(ws, {remote: 'hub', transport: tuning()})
  return {ws, db, repo, dir}
}

async function cloneOf(repo: string, branch?: string): Promise<{ws: Workspace; db: string}> {
  const dir = path.join(tmpDir('clone'), 'c')
  const r = await clone({url: `oxen://${NS}/${repo}`, dir, branch, remote: {host: hub.host}, transport: tuning()})
  return {ws: await Workspace.open(dir), db: path.join(dir, r.database)}
}

/** A committed repository with one workspace staging `files`. */
async function withWorkspace(files: Record<string, Buffer>): Promise<{c: OxenClient; wsId: string; base: string}> {
  const c = client(`ws-${++counter}`)
  await c.createRepo()
  const first = await c.createWorkspace('main', 'first')
  await c.uploadFiles(first.id, '', [{path: 'a.png', bytes: png(1)}, {path: 'd/b.png', bytes: png(2)}])
  const base = await c.commitWorkspace(first.id, 'main', ME)
  const ws = await c.createWorkspace('main', 'second')
  await c.uploadFiles(ws.id, '', Object.entries(files).map(([p, bytes]) => ({path: p, bytes})))
  return {c, wsId: ws.id, base: base.id}
}

describe('oxen hub as the real server behaves: the hub itself', function () {
  this.timeout(60_000)

  it('opens no workspace on a missing branch of a non-empty repository (400 "create the branch first")', async () => {
    const c = client(`branchless-${++counter}`)
    await c.createRepo()
    // An empty repository gets its initial commit on the branch asked for.
    const ws = await c.createWorkspace('main', 'w1')
    expect(ws.commit).to.include({message: 'Initialized Repo 🐂', author: 'Oxen', email: 'oxen@oxen.ai'})
    const raw = await fetch(`${hub.url}/api/repos/${NS}/${c.repo}/workspaces`, {
      method: 'PUT', headers: {authorization: `Bearer ${hub.token}`}, body: JSON.stringify({workspace_id: 'w2', branch_name: 'night'}),
    })
    expect(raw.status).to.equal(400)
    expect(await raw.json()).to.include({status: 'error', status_message: 'Branch not found: night. For non-empty repositories, create the branch first.'})
    const err = await failure(c.createWorkspace('night', 'w3'))
    expect(err.code).to.equal('REF_MISSING')
    expect(err.oneLine).to.match(/hub branch night does not exist .*create the branch first/)
    expect(err.oneLine.split('\n')).to.have.length(1)
  })

  it('takes a file over 10 MiB through the chunk API and drops a gzipped part that inflates past 10 MiB with HTTP 200', async () => {
    const c = client(`chunks-${++counter}`)
    await c.createRepo()
    const ws = await c.createWorkspace('main', 'big')
    const big = randomBytes(12 * MiB)
    hub.resetLog()
    const done = await c.uploadFiles(ws.id, 'quadrants', [{path: 'big.png', bytes: big}, {path: 'small.png', bytes: png(3)}])
    expect(done.files).to.equal(2)
    const hash = xxh3_128Hex(big)
    expect(hub.requests.filter((r) => r.path.includes('/versions/')).map((r) => `${r.method} ${r.path.replace(/^.*\/versions\//, '')}${r.bodyBytes ? ` ${r.bodyBytes}` : ''}`)).to.have.members([
      `POST ${hash}/create`, `PUT ${hash}/chunks ${10 * MiB}`, `PUT ${hash}/chunks ${2 * MiB}`, `POST ${hash}/complete`,
    ])
    const complete = hub.requests.find((r) => r.path.endsWith('/complete'))!
    expect(complete.json).to.deep.equal({files: [{hash, file_name: 'big.png', dst_dir: 'quadrants', num_chunks: 2}], workspace_id: 'big'})
    // No multipart part carried it.
    const parts = hub.requests.flatMap((r) => r.parts ?? [])
    expect(parts.map((p) => p.filename)).to.deep.equal(['small.png'])
    expect((await c.workspaceChanges(ws.id)).added.sort()).to.deep.equal(['quadrants/big.png', 'quadrants/small.png'])
    await c.commitWorkspace(ws.id, 'main', ME)
    expect((await c.downloadFile('main', 'quadrants/big.png')).equals(big)).to.equal(true)

    // What the hub does with a gzipped part that inflates past 10 MiB: 200, not in `paths`.
    const ws2 = await c.createWorkspace('main', 'oversize')
    const {body, contentType} = encodeMultipart([
      {name: 'file[]', filename: 'huge.bin', contentType: 'application/gzip', data: gzipSync(Buffer.alloc(10 * MiB + 1))},
      {name: 'file[]', filename: 'edge.bin', contentType: 'application/gzip', data: gzipSync(Buffer.alloc(10 * MiB, 1))},
    ])
    const res = await fetch(`${hub.url}/api/repos/${NS}/${c.repo}/workspaces/${ws2.id}/files/`, {method: 'POST', headers: {authorization: `Bearer ${hub.token}`, 'content-type': contentType}, body})
    expect(res.status).to.equal(200)
    expect(((await res.json()) as {paths: string[]}).paths).to.deep.equal(['edge.bin'])
    expect(hub.oversizeDropped).to.equal(1)
  })

  it('maps its errors: 422 NoChanges, 404 on a deleted branch, 409 "Workspace is behind", 500 for an existing branch made from a commit', async () => {
    const {c, wsId, base} = await withWorkspace({'a.png': png(1)}) // the same bytes as the base: not staged
    const none = await failure(c.commitWorkspace(wsId, 'main', ME))
    expect([none.code, none.data?.serverMessage]).to.deep.equal(['NOTHING_TO_COMMIT', 'NoChanges'])

    await c.createBranch('side', {branch: 'main'})
    const side = await c.createWorkspace('side', 'on-side')
    await c.uploadFiles(side.id, '', [{path: 'new.png', bytes: png(9)}])
    await c.deleteBranch('side')
    const gone = await failure(c.commitWorkspace(side.id, 'side', ME))
    expect([gone.code, gone.data?.status, gone.data?.serverMessage]).to.deep.equal(['REF_MISSING', 404, 'side'])
    expect(gone.oneLine).to.match(/hub branch side no longer exists/)

    const late = await c.createWorkspace('main', 'late')
    await c.uploadFiles(late.id, '', [{path: 'a.png', bytes: png(300)}])
    hub.commitDirect(NS, c.repo, 'main', {'a.png': png(400)})
    const behind = await failure(c.commitWorkspace(late.id, 'main', ME))
    expect([behind.code, behind.data?.status]).to.deep.equal(['REMOTE_MOVED', 409])
    expect(String(behind.data?.serverMessage)).to.match(/^This workspace 'late' is behind on branch 'main'/)

    const exists = await failure(c.createBranch('main', {commitId: base}))
    expect([exists.code, exists.data?.status]).to.deep.equal(['REF_EXISTS', 500])
    const unknown = await failure(c.createBranch('x', {commitId: 'abc123'}))
    expect(unknown.code).to.equal('UNKNOWN_REVISION')
    // From a branch, an existing name is simply answered.
    expect((await c.createBranch('main', {branch: 'nowhere'})).name).to.equal('main')
    for (const e of [none, gone, behind, exists, unknown]) expect(e.oneLine.split('\n')).to.have.length(1)
  })

  it('lists a workspace as its base commit plus every staged added file on every page; its changes carry no hash', async () => {
    const {c, wsId} = await withWorkspace({'d/b.png': png(20), 'd/new/deep.png': png(21), 'top.png': png(22)})
    const get = async (dir: string, page: number) => (await (await fetch(`${hub.url}/api/repos/${NS}/${c.repo}/dir/${wsId}${dir}?page=${page}&page_size=1`, {headers: {authorization: `Bearer ${hub.token}`}})).json()) as {entries: Array<{filename: string; hash: string; changes?: {status: string}}>; total_entries: number}
    const root1 = await get('', 1)
    const root2 = await get('', 2)
    // Root: "d" and "a.png" paginated; the added files at any depth on both pages, full paths.
    expect(root1.total_entries).to.equal(2)
    for (const page of [root1, root2]) {
      expect(page.entries.filter((e) => e.changes?.status === 'Added').map((e) => e.filename).sort()).to.deep.equal(['d/new/deep.png', 'top.png'])
    }
    const d = await get('/d', 1)
    const modified = d.entries.find((e) => e.filename === 'b.png')!
    expect(modified.changes).to.deep.equal({status: 'Modified'})
    expect(modified.hash).to.equal(xxh3_128Hex(png(2))) // the base commit's hash, not the staged one
    const changes = await (await fetch(`${hub.url}/api/repos/${NS}/${c.repo}/workspaces/${wsId}/changes`, {headers: {authorization: `Bearer ${hub.token}`}})).json() as {staged: {added_files: {entries: Array<{hash: string}>}}}
    expect(changes.staged.added_files.entries.map((e) => e.hash)).to.deep.equal(['', ''])
    expect((await c.workspaceChanges(wsId)).added.sort()).to.deep.equal(['d/new/deep.png', 'top.png'])
  })

  it('deletes a whole repository (DELETE /api/repos/NS/REPO); one already gone is fine', async () => {
    const c = client(`doomed-${++counter}`)
    await c.createRepo()
    await c.deleteRepo()
    expect(await c.findRepo()).to.equal(null)
    await c.deleteRepo()
  })

  it('commits a workspace on top of a branch that moved without conflicting paths (parent = the current head)', async () => {
    const {c, wsId, base} = await withWorkspace({'mine.png': png(30)})
    const other = hub.commitDirect(NS, c.repo, 'main', {'theirs.png': png(31)})
    const m = await c.mergeability(wsId, 'main')
    expect(m!.mergeable).to.equal(true)
    expect(m!.commits.map((x) => x.id)).to.deep.equal([other.id])
    const landed = await c.commitWorkspace(wsId, 'main', ME)
    expect(landed.parent_ids).to.deep.equal([other.id])
    expect(landed.parent_ids[0]).to.not.equal(base)
  })
})

describe('oxen hub as the real server behaves: push and clone', function () {
  this.timeout(120_000)

  it('pushes a second and a third branch, each created first from the hub commit of its nearest pushed ancestor', async () => {
    const {ws, db, repo} = await pushed()
    const mainHead = hub.head(NS, repo)!.id
    await switchBranch(ws, 'night', {create: true})
    setGeneration(db, 0, 0, 1001)
    await commit(ws, {message: 'night edit', author})
    hub.resetLog()
    await push(ws, {remote: 'hub', branch: 'night', transport: tuning()})
    const created = hub.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/branches'))
    expect(created.map((r) => r.json)).to.deep.equal([{new_name: 'night', commit_id: mainHead}])
    expect(hub.head(NS, repo, 'night')).to.include({message: 'night edit'})
    expect(hub.head(NS, repo, 'night')!.parent_ids).to.deep.equal([mainHead])

    await switchBranch(ws, 'dawn', {create: true})
    setGeneration(db, 1, 0, 1002)
    await commit(ws, {message: 'dawn edit', author})
    const nightHead = hub.head(NS, repo, 'night')!.id
    hub.resetLog()
    await push(ws, {remote: 'hub', branch: 'dawn', transport: tuning()})
    expect(hub.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/branches')).map((r) => r.json)).to.deep.equal([{new_name: 'dawn', commit_id: nightHead}])
    expect(hub.head(NS, repo, 'dawn')!.parent_ids).to.deep.equal([nightHead])
    expect(hub.head(NS, repo, 'main')!.id).to.equal(mainHead)

    const c = await cloneOf(repo, 'dawn')
    expect(dumpDatabase(c.db)).to.deep.equal(dumpDatabase(db))

    // A branch with nothing new starts at the hub commit of its tip, not at an empty commit.
    await switchBranch(ws, 'noon', {create: true})
    const dawnHead = hub.head(NS, repo, 'dawn')!.id
    const r = await push(ws, {remote: 'hub', branch: 'noon', transport: tuning()})
    expect(r.commits).to.equal(0)
    expect(hub.head(NS, repo, 'noon')!.id).to.equal(dawnHead)
    expect(dumpDatabase((await cloneOf(repo, 'noon')).db)).to.deep.equal(dumpDatabase(db))
  })

  it('pushes and clones a 12 MiB tile through the chunk API, never as a gzipped part', async () => {
    const {ws, db, repo} = await pushed()
    const big = Buffer.concat([png(5), randomBytes(12 * MiB)])
    withDb(db, (d) => d.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = 1 AND quadrant_y = 1').run(big))
    await commit(ws, {message: 'a 12 MiB tile', author})
    hub.resetLog()
    await push(ws, {remote: 'hub', transport: tuning()})
    expect(hub.count('PUT', /\/versions\/[0-9a-f]+\/chunks$/)).to.equal(2)
    expect(hub.count('POST', /\/versions\/[0-9a-f]+\/complete$/)).to.equal(1)
    expect(Math.max(...hub.requests.flatMap((r) => r.parts ?? []).map((p) => p.size))).to.be.below(MiB)
    expect(hub.oversizeDropped).to.equal(0)
    const c = await cloneOf(repo)
    expect(dumpDatabase(c.db)).to.deep.equal(dumpDatabase(db))
  })

  it('resumes a push interrupted after uploading from the workspace\'s changes and its journal, never listing the workspace', async () => {
    const {ws, db, repo} = await pushed()
    for (let i = 0; i < 4; i++) setGeneration(db, i, 1, 1100 + i)
    await commit(ws, {message: 'four tiles', author})
    const before = hub.head(NS, repo)!.id
    hub.failNext({method: 'POST', path: /\/merge\/main$/, status: 500, body: {error: {type: 'internal_server_error', title: 'boom'}, status: 'error', status_message: 'internal_server_error'}})
    const err = await failure(push(ws, {remote: 'hub', transport: tuning()}))
    expect(err.code).to.equal('REMOTE_UNREACHABLE')
    expect(hub.head(NS, repo)!.id).to.equal(before)
    hub.resetLog()
    await push(ws, {remote: 'hub', transport: tuning()})
    expect(hub.uploadedFiles).to.equal(0)
    expect(hub.count('GET', /\/dir\/tilesync-/)).to.equal(0)
    expect(hub.count('GET', /\/workspaces\/[^/]+\/changes$/)).to.equal(1)
    expect(hub.head(NS, repo)!.message).to.equal('four tiles')
    expect(dumpDatabase((await cloneOf(repo)).db)).to.deep.equal(dumpDatabase(db))
  })

  it('a push cut after half its uploads sends only the rest', async () => {
    const {ws, db, repo} = await pushed()
    for (let i = 0; i < 4; i++) setGeneration(db, i, 2, 1200 + i)
    await commit(ws, {message: 'cut halfway', author})
    // The quadrants go first; the rows files after them: fail those once.
    hub.failNext({method: 'POST', path: /\/files\/tilesync\/rows\//, status: 400, body: {error: {type: 'bad_request', title: 'Bad Request', detail: 'x'}, status: 'error', status_message: 'bad_request'}})
    await failure(push(ws, {remote: 'hub', transport: tuning()}))
    hub.resetLog()
    await push(ws, {remote: 'hub', transport: tuning()})
    const sent = hub.requests.flatMap((r) => (r.parts ?? []).map((p) => `${r.path.replace(/^.*\/files\/?/, '')}/${p.filename}`))
    expect(sent.filter((p) => p.startsWith('quadrants/'))).to.deep.equal([])
    expect(sent.some((p) => p.startsWith('tilesync/rows/'))).to.equal(true)
    expect(hub.count('GET', /\/dir\/tilesync-/)).to.equal(0)
    expect(dumpDatabase((await cloneOf(repo)).db)).to.deep.equal(dumpDatabase(db))
  })

  it('refuses a branch that moved without conflicting paths (asked first), and never records a commit made on top of someone else\'s', async () => {
    const {ws, db, repo} = await pushed()
    setGeneration(db, 2, 2, 1301)
    await commit(ws, {message: 'mine', author})
    // Someone commits an unrelated file while this push uploads.
    hub.beforeNext({method: 'POST', path: /\/validate$/}, () => hub.commitDirect(NS, repo, 'main', {'notes/theirs.txt': Buffer.from('hello')}, 'theirs'))
    const err = await failure(push(ws, {remote: 'hub', transport: tuning()}))
    expect(err.code).to.equal('REMOTE_MOVED')
    expect(hub.head(NS, repo)!.message).to.equal('theirs')

    // Moved just before the workspace opened: the hub opens it on the new head, against which
    // nothing was worked out; refused before anything is uploaded or committed.
    setGeneration(db, 2, 2, 1303)
    await commit(ws, {message: 'mine, after a pull', author})
    await pull(ws, {remote: 'hub', transport: tuning()})
    hub.beforeNext({method: 'PUT', path: /\/workspaces$/}, () => hub.commitDirect(NS, repo, 'main', {'notes/more.txt': Buffer.from('more')}, 'theirs again'))
    hub.resetLog()
    const early = await failure(push(ws, {remote: 'hub', transport: tuning()}))
    expect(early.code).to.equal('REMOTE_MOVED')
    expect(hub.head(NS, repo)!.message).to.equal('theirs again')
    expect(hub.uploadedFiles).to.equal(0)
    expect(hub.workspaceCount(NS, repo)).to.equal(0)

    // A hub that cannot be asked (no mergeability route), and a commit landing meanwhile:
    // the landed commit's parent is not the base pushed from.
    const {ws: ws2, db: db2, repo: repo2} = await pushed()
    setGeneration(db2, 2, 2, 1302)
    await commit(ws2, {message: 'mine again', author})
    hub.failNext({method: 'GET', path: /\/workspaces\/[^/]+\/merge\/main$/, status: 404, body: {status: 'error', status_message: 'resource_not_found'}})
    hub.beforeNext({method: 'POST', path: /\/merge\/main$/}, () => hub.commitDirect(NS, repo2, 'main', {'notes/theirs.txt': Buffer.from('hi')}, 'theirs too'))
    const err2 = await failure(push(ws2, {remote: 'hub', transport: tuning()}))
    expect(err2.code).to.equal('REMOTE_MOVED')
    const landed = hub.head(NS, repo2)!
    expect(landed.message).to.equal('mine again')
    const state = JSON.parse(fs.readFileSync(path.join(ws2.repo.layout.remoteState('hub'), 'oxen.json'), 'utf8')) as {commits: Record<string, string>}
    expect(state.commits).to.not.have.property(landed.id)
  })

  it('sends the steps the official client takes, and pushes when the hub lacks them', async () => {
    const {ws, db, repo} = await pushed()
    setGeneration(db, 3, 3, 1401)
    await commit(ws, {message: 'steps', author})
    hub.resetLog()
    await push(ws, {remote: 'hub', transport: tuning()})
    const landed = hub.head(NS, repo)!.id
    const steps = hub.requests.filter((r) => r.method !== 'GET').map((r) => r.path.replace(/^\/api\/repos\/[^/]+\/[^/]+/, '').replace(/\/workspaces\/[^/]+/, '/workspaces/W'))
    const order = ['/workspaces', '/workspaces/W/validate', '/action/started/push_workspace', '/workspaces/W/merge/main', `/commits/${landed}/complete`, '/action/completed/push_workspace']
    expect(steps.filter((s) => order.includes(s))).to.deep.equal(order)
    const open = hub.requests.find((r) => r.method === 'PUT' && r.path.endsWith('/workspaces'))!
    expect(open.json).to.include({branch_name: 'main', resource_path: '/', entity_type: 'user', force: true})

    setGeneration(db, 3, 3, 1402)
    await commit(ws, {message: 'no steps', author})
    for (const p of [/\/validate$/, /\/action\/started\//, /\/action\/completed\//, /\/complete$/]) {
      hub.failNext({method: 'POST', path: p, status: 404, body: {status: 'error', status_message: 'resource_not_found'}})
    }
    await push(ws, {remote: 'hub', transport: tuning()})
    expect(hub.head(NS, repo)!.message).to.equal('no steps')
  })
})
