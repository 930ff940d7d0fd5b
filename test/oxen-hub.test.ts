import {expect} from 'chai'
import {randomBytes} from 'node:crypto'
import {gunzipSync} from 'node:zlib'

import {isTilesyncError, type TilesyncError} from '../src/core/errors.js'
import {OxenClient, type OxenClientOptions} from '../src/remote/oxen/oxen-client.js'
import {xxh3_128Hex} from '../src/dataset/xxh3.js'
import {startOxenHub, type OxenHub} from './support/oxen-hub.js'

const NS = 'tiles'
const ME = {message: 'export tiles', author: 'Tess Tile', email: 'tess@example.com'}

async function failure(p: Promise<unknown>): Promise<TilesyncError> {
  try {
    await p
  } catch (err) {
    if (isTilesyncError(err)) return err
    throw err
  }
  throw new Error('expected a TilesyncError')
}

function png(n: number, size = 200): Buffer {
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.from(`tile-${n}-`), randomBytes(size)])
}

describe('oxen client against the fake hub', function () {
  let hub: OxenHub
  let seq = 0
  const client = (repo: string, extra: Partial<OxenClientOptions> = {}) =>
    new OxenClient({namespace: NS, repo, token: hub.token, host: hub.url, backoffMs: 5, ...extra})
  const freshRepo = async () => {
    const c = client(`dataset-${++seq}`)
    await c.createRepo()
    return c
  }

  before(async () => {
    hub = await startOxenHub()
  })
  after(async () => {
    await hub.close()
  })

  it('creates a repository, refuses a duplicate, and names a missing one clearly', async () => {
    const c = client('new-one')
    expect(await c.findRepo()).to.equal(null)
    const missing = await failure(c.listDir('main'))
    expect(missing.code).to.equal('REMOTE_UNKNOWN')
    expect(missing.message).to.contain('no such repository tiles/new-one')

    const repo = await c.createRepo({description: 'tiles'})
    expect(repo).to.include({namespace: NS, name: 'new-one', is_empty: true})
    expect((await c.getRepo()).name).to.equal('new-one')
    expect((await failure(c.createRepo())).code).to.equal('REMOTE_EXISTS')
  })

  it('checks Content-Type and the name when creating a repository', async () => {
    const post = (body: unknown, type: string) => fetch(`${hub.url}/api/repos`, {
      method: 'POST', body: JSON.stringify(body), headers: {'content-type': type, authorization: `Bearer ${hub.token}`},
    })
    const wrongType = await post({namespace: NS, name: 'typed'}, 'text/plain')
    expect(wrongType.status).to.equal(400)
    expect(await wrongType.json()).to.include({status: 'error'})
    expect((await post({namespace: NS, name: '-bad'}, 'application/json')).status).to.equal(400)
    expect((await post({namespace: NS, name: 'x'}, 'application/json')).status).to.equal(400)
    expect((await post({namespace: NS, name: 'typed'}, 'application/json')).status).to.equal(200)
  })

  it('uploads gzipped parts in batches through a workspace, commits, lists, downloads', async () => {
    const c = await freshRepo()
    const ws = await c.createWorkspace('main', 'ws-first')
    expect(ws.id).to.equal('ws-first')
    const root = await c.getBranch('main')
    expect(root?.commit_id).to.equal(ws.commit.id)

    const renders = Array.from({length: 130}, (_, i) => ({path: `${String(i).padStart(4, '0')}_0001_r.png`, bytes: png(i)}))
    const top = [
      {path: 'README.md', bytes: Buffer.from('# tiles\n')},
      {path: 'generations.csv', bytes: Buffer.from('render,quadrant,x,y\n')},
      {path: 'quadrants/0000_0000_q.png', bytes: png(1000)},
    ]
    hub.resetLog()
    const small = client(c.repo, {batchBytes: 4096, concurrency: 3})
    const r1 = await small.uploadFiles(ws.id, 'renders', renders)
    const r2 = await small.uploadFiles(ws.id, '', top)
    expect(r1.files).to.equal(130)
    expect(r2.files).to.equal(3)
    const uploads = hub.requests.filter((r) => r.method === 'POST' && r.path.includes('/files'))
    expect(uploads.length).to.equal(r1.requests + r2.requests)
    expect(r1.requests).to.be.greaterThan(5)
    expect(hub.uploadedFiles).to.equal(133)
    for (const u of uploads) {
      expect(u.parts!.length).to.be.greaterThan(0)
      for (const part of u.parts!) expect(part.contentType).to.equal('application/gzip')
    }
    expect(uploads[0].path).to.match(/\/workspaces\/ws-first\/files\/renders$/)

    const changes = await c.workspaceChanges(ws.id)
    expect(changes.added.length).to.equal(133)
    expect(changes.modified).to.deep.equal([])

    const commit = await c.commitWorkspace(ws.id, 'main', ME)
    expect(commit).to.include({message: ME.message, author: ME.author, email: ME.email})
    expect(commit.parent_ids).to.deep.equal([root!.commit_id])
    expect(hub.workspaceCount(NS, c.repo)).to.equal(0) // unnamed: deleted after commit

    const files = hub.files(NS, c.repo)!
    expect(files.size).to.equal(133)
    expect(files.get('renders/0007_0001_r.png')!.equals(renders[7].bytes)).to.equal(true)
    expect(files.get('quadrants/0000_0000_q.png')!.equals(top[2].bytes)).to.equal(true)

    const rootList = await c.listDir('main')
    expect(rootList.map((e) => [e.filename, e.is_dir])).to.deep.equal([
      ['quadrants', true], ['renders', true], ['README.md', false], ['generations.csv', false],
    ])
    hub.resetLog()
    const listed = await c.listDir('main', 'renders')
    expect(hub.count('GET', '/dir/main/renders')).to.equal(2) // 130 entries, pages of 100
    expect(listed.length).to.equal(130)
    const byName = new Map(listed.map((e) => [e.filename, e]))
    expect(byName.get('0042_0001_r.png')).to.include({hash: xxh3_128Hex(renders[42].bytes), size: renders[42].bytes.length, is_dir: false})
    expect(byName.get('0042_0001_r.png')!.latest_commit?.id).to.equal(commit.id)

    expect((await c.downloadFile('main', 'renders/0042_0001_r.png')).equals(renders[42].bytes)).to.equal(true)
    expect((await c.downloadFile(commit.id, 'README.md')).toString()).to.equal('# tiles\n')
    const entry = await c.getEntry('main', 'generations.csv')
    expect(entry?.hash).to.equal(xxh3_128Hex(top[1].bytes))
    expect(await c.getEntry('main', 'nope.csv')).to.equal(null)
    const gone = await failure(c.downloadFile('main', 'renders/nope.png'))
    expect(gone.code).to.equal('OBJECT_MISSING')

    expect(await c.versionExists(xxh3_128Hex(renders[3].bytes))).to.equal(true)
    expect(await c.versionExists(xxh3_128Hex(Buffer.from('never uploaded')))).to.equal(false)

    const history = await c.history('main')
    expect(history.map((h) => h.id)).to.deep.equal([commit.id, root!.commit_id])
  })

  it('sends parts the hub can gunzip, named by their path under the upload dir', async () => {
    const c = await freshRepo()
    const ws = await c.createWorkspace('main', 'ws-raw')
    const bytes = png(5, 5000)
    const seen: Buffer[] = []
    const realFetch = globalThis.fetch
    globalThis.fetch = async (input, init) => {
      if (init?.method === 'POST' && String(input).includes('/files/')) seen.push(Buffer.from(init.body as Uint8Array))
      return realFetch(input, init)
    }
    try {
      await c.uploadFiles(ws.id, 'renders', [{path: 'sub dir/a "b".png', bytes}])
    } finally {
      globalThis.fetch = realFetch
    }
    const body = seen[0]
    const headEnd = body.indexOf('\r\n\r\n')
    const head = body.subarray(0, headEnd).toString()
    expect(head).to.contain('name="file[]"; filename="sub dir/a %22b%22.png"')
    expect(head).to.contain('Content-Type: application/gzip')
    const boundary = head.split('\r\n')[0]
    const data = body.subarray(headEnd + 4, body.indexOf(`\r\n${boundary}`, headEnd))
    expect(gunzipSync(data).equals(bytes)).to.equal(true)
    expect((await c.workspaceChanges(ws.id)).added).to.deep.equal(['renders/sub dir/a "b".png'])
  })

  it('stages only what changed, removes files, and answers 422 when nothing changed', async () => {
    const c = await freshRepo()
    const ws1 = await c.createWorkspace('main', 'ws-a')
    await c.uploadFiles(ws1.id, '', [{path: 'a.png', bytes: png(1)}, {path: 'b.png', bytes: png(2)}, {path: 'd/c.png', bytes: png(3)}])
    const first = await c.commitWorkspace(ws1.id, 'main', ME)

    const ws2 = await c.createWorkspace('main', 'ws-b')
    const newA = png(11)
    await c.uploadFiles(ws2.id, '', [{path: 'a.png', bytes: newA}])
    expect(await c.removeFiles(ws2.id, ['b.png'])).to.deep.equal({notFound: []})
    expect(await c.removeFiles(ws2.id, ['missing.png'])).to.deep.equal({notFound: ['missing.png']})
    expect(await c.workspaceChanges(ws2.id)).to.deep.equal({added: [], modified: ['a.png'], removed: ['b.png']})
    const second = await c.commitWorkspace(ws2.id, 'main', {...ME, message: 'second'})
    expect(second.parent_ids).to.deep.equal([first.id])
    expect([...hub.files(NS, c.repo)!.keys()].sort()).to.deep.equal(['a.png', 'd/c.png'])
    expect(hub.files(NS, c.repo)!.get('a.png')!.equals(newA)).to.equal(true)

    const ws3 = await c.createWorkspace('main', 'ws-c')
    await c.uploadFiles(ws3.id, '', [{path: 'a.png', bytes: newA}]) // same bytes as the branch
    const none = await failure(c.commitWorkspace(ws3.id, 'main', ME))
    expect(none.code).to.equal('NOTHING_TO_COMMIT')
    await c.deleteWorkspace(ws3.id)
    await c.deleteWorkspace(ws3.id) // already gone: fine
    expect(hub.workspaceCount(NS, c.repo)).to.equal(0)
  })

  it('answers 409 "workspace is behind" only when a staged file also changed on the branch', async () => {
    const c = await freshRepo()
    const ws = await c.createWorkspace('main', 'ws-0')
    await c.uploadFiles(ws.id, '', [{path: 'a.png', bytes: png(1)}, {path: 'b.png', bytes: png(2)}])
    await c.commitWorkspace(ws.id, 'main', ME)

    const mine = await c.createWorkspace('main', 'ws-mine')
    await c.uploadFiles(mine.id, '', [{path: 'a.png', bytes: png(100)}])
    hub.commitDirect(NS, c.repo, 'main', {'b.png': png(200)}) // unrelated file moved
    const merged = await c.commitWorkspace(mine.id, 'main', ME)
    expect(hub.files(NS, c.repo)!.get('b.png')!.subarray(0, 12).toString()).to.contain('tile-200')
    expect(merged.parent_ids[0]).to.not.equal(mine.commit.id)

    const late = await c.createWorkspace('main', 'ws-late')
    await c.uploadFiles(late.id, '', [{path: 'a.png', bytes: png(300)}])
    hub.commitDirect(NS, c.repo, 'main', {'a.png': png(400)})
    const behind = await failure(c.commitWorkspace(late.id, 'main', ME))
    expect(behind.code).to.equal('REMOTE_MOVED')
    expect(behind.message).to.match(/workspace is behind: pull first/)
  })

  it('lists, creates and reads branches, and pages through long histories', async () => {
    const c = await freshRepo()
    const ws = await c.createWorkspace('main', 'ws-h')
    await c.uploadFiles(ws.id, '', [{path: 'a.png', bytes: png(1)}])
    const base = await c.commitWorkspace(ws.id, 'main', ME)
    for (let i = 0; i < 120; i++) hub.commitDirect(NS, c.repo, 'main', {[`f${i}.png`]: png(i, 8)}, `c${i}`)
    hub.resetLog()
    const history = await c.history('main')
    expect(history.length).to.equal(122)
    expect(hub.count('GET', '/commits/history/main')).to.equal(2)
    expect(history[0].message).to.equal('c119')
    expect(history.at(-2)!.id).to.equal(base.id)

    expect(await c.getBranch('feature/x')).to.equal(null)
    const fromBranch = await c.createBranch('feature/x', {branch: 'main'})
    expect(fromBranch.commit_id).to.equal(history[0].id)
    const fromCommit = await c.createBranch('old', {commitId: base.id})
    expect(fromCommit.commit_id).to.equal(base.id)
    expect((await c.listBranches()).map((b) => b.name)).to.deep.equal(['feature/x', 'main', 'old'])
    expect((await c.getBranch('feature/x'))?.commit_id).to.equal(history[0].id)
    expect((await c.listDir('feature/x')).map((e) => e.filename)).to.include('f119.png')
    expect((await c.getCommit(base.id))?.message).to.equal(ME.message)
    expect(await c.getCommit('0123abcd')).to.equal(null)
    expect((await failure(c.history('no-such-branch'))).code).to.equal('UNKNOWN_REVISION')
  })

  it('refuses a wrong token (401) without echoing it, and an Oxen/ user agent (426)', async () => {
    await freshRepo()
    const secret = 'tok-WRONG-5e8d1b7f'
    const bad = new OxenClient({namespace: NS, repo: `dataset-${seq}`, token: secret, host: hub.url})
    const err = await failure(bad.listBranches())
    expect(err.code).to.equal('REMOTE_AUTH')
    expect(err.oneLine).to.contain('OXEN_API_TOKEN')
    expect(err.oneLine).to.contain('oxen config --auth')
    expect(JSON.stringify({m: err.message, h: err.hint, d: err.data, s: err.stack})).to.not.contain(secret)

    const old = client(`dataset-${seq}`, {userAgent: 'Oxen/0.19.0'})
    const gate = await failure(old.listBranches())
    expect(gate.code).to.equal('REMOTE_PROTOCOL')
    expect(gate.message).to.contain('426')
  })

  it('refuses hostile paths before sending, and the hub refuses them too', async () => {
    const c = await freshRepo()
    const ws = await c.createWorkspace('main', 'ws-x')
    for (const p of ['../escape.png', '/abs.png', 'a/../../b.png', 'a\\b.png', '']) {
      expect((await failure(c.uploadFiles(ws.id, '', [{path: p, bytes: png(1)}]))).code).to.equal('HOSTILE_PATH')
    }
    const boundary = 'XyZ'
    const body = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file[]"; filename="../../etc/x"\r\n\r\nhi\r\n--${boundary}--\r\n`)
    const res = await fetch(`${hub.url}/api/repos/${NS}/${c.repo}/workspaces/${ws.id}/files/renders`, {
      method: 'POST', body, headers: {'content-type': `multipart/form-data; boundary=${boundary}`, authorization: `Bearer ${hub.token}`},
    })
    expect(res.status).to.equal(400)
    expect(await res.json()).to.include({status: 'error'})
  })

  it('serves an injected one-shot fault, then recovers (client retries the 500)', async () => {
    const c = await freshRepo()
    hub.failNext({method: 'GET', path: '/branches', status: 500, body: '<html>oops</html>'})
    hub.resetLog()
    expect(await c.listBranches()).to.deep.equal([])
    expect(hub.requests.map((r) => r.status)).to.deep.equal([500, 200])
  })

  it('can leave files out of an upload answer; the client sends them again', async () => {
    const c = await freshRepo()
    const ws = await c.createWorkspace('main', 'ws-drop')
    hub.dropNextUploads(2)
    hub.resetLog()
    const files = Array.from({length: 5}, (_, i) => ({path: `${i}.png`, bytes: png(i)}))
    const result = await c.uploadFiles(ws.id, 'renders', files)
    expect(result).to.include({files: 5, requests: 2})
    const retry = hub.requests.filter((r) => r.method === 'POST')[1]
    expect(retry.parts!.map((p) => p.filename)).to.deep.equal(['3.png', '4.png'])
    expect((await c.workspaceChanges(ws.id)).added.length).to.equal(5)
  })
})
