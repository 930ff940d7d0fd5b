import {expect} from 'chai'
import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import type {Backend} from '../src/remote/backend.js'
import {DirectoryBackend} from '../src/remote/directory-backend.js'
import {openBackend} from '../src/remote/registry.js'
import {RetryingBackend} from '../src/remote/retrying-backend.js'
import {S3Backend, type S3BackendOptions} from '../src/remote/s3/s3-backend.js'
import {openS3Backend} from '../src/remote/s3/open-s3-backend.js'
import {runBackendConformance} from './support/backend-conformance.js'
import {S3RVER_KEY, S3RVER_SECRET, startS3Server, type S3TestServer} from './support/s3-server.js'

let server: S3TestServer
const opened: Backend[] = []

before(async () => {
  server = await startS3Server({buckets: ['tiles', 'mirror']})
})

after(async () => {
  for (const b of opened) await b.close?.()
  await server?.stop()
})

function s3(bucket: string, prefix: string, extra: Partial<S3BackendOptions> = {}): S3Backend {
  const b = new S3Backend({
    flavour: 's3',
    bucket,
    prefix,
    settings: {
      endpoint: server.endpoint,
      region: 'auto',
      credentials: {accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_SECRET},
      vars: {accessKeyId: 'AWS_ACCESS_KEY_ID', secretAccessKey: 'AWS_SECRET_ACCESS_KEY'},
    },
    timeoutMs: 20_000,
    ...extra,
  })
  opened.push(b)
  return b
}

async function keys(b: Backend, prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const k of b.list(prefix)) out.push(k.key)
  return out.sort()
}

runBackendConformance('s3 (s3rver)', async () => {
  const backend = s3('tiles', `conformance/${randomBytes(6).toString('hex')}`)
  return {backend, cleanup: async () => backend.close()}
})

runBackendConformance('s3 behind RetryingBackend (s3rver)', async () => {
  const backend = new RetryingBackend(s3('tiles', `retrying/${randomBytes(6).toString('hex')}`), {attempts: 3, baseDelayMs: 10})
  return {backend, cleanup: async () => backend.close()}
})

describe('S3Backend specifics (s3rver)', () => {
  it('keeps keys under its prefix and sees nothing outside it', async () => {
    const a = s3('tiles', 'iso/team-a')
    const ab = s3('tiles', 'iso/team-ab')
    const root = s3('tiles', '')
    await a.put('refs/heads/main', Buffer.from('a\n'))
    await ab.put('refs/heads/main', Buffer.from('ab\n'))
    expect((await a.get('refs/heads/main'))?.toString()).to.equal('a\n')
    expect((await ab.get('refs/heads/main'))?.toString()).to.equal('ab\n')
    expect(await keys(a, 'refs/')).to.deep.equal(['refs/heads/main'])
    expect(await keys(ab, '')).to.deep.equal(['refs/heads/main'])
    expect(await keys(root, 'iso/')).to.deep.equal(['iso/team-a/refs/heads/main', 'iso/team-ab/refs/heads/main'])
    expect(a.location).to.equal('s3://tiles/iso/team-a')
  })

  it('gives the ETag of the stored object as its version', async () => {
    const b = s3('tiles', 'etag')
    await b.put('k', Buffer.from('hello'))
    const v = await b.getVersioned('k')
    expect(v!.etag).to.equal('"5d41402abc4b2a76b9719d911017c592"')
  })

  it('pages through listings with continuation tokens', async () => {
    const b = s3('tiles', `paged/${randomBytes(4).toString('hex')}`, {listPageSize: 7})
    const written: string[] = []
    for (let i = 0; i < 40; i++) written.push(`objects/${String(i).padStart(2, '0')}/x`)
    await Promise.all(written.map((k) => b.put(k, Buffer.from(k))))
    const before = server.requestLog.count('GET', 'list-type=2')
    expect(await keys(b, 'objects/')).to.deep.equal(written)
    expect(server.requestLog.count('GET', 'list-type=2') - before).to.equal(6)
  })

  it('copies between two buckets on the same server without the bytes passing through', async () => {
    const src = new RetryingBackend(s3('tiles', 'copy-src'))
    const dst = new RetryingBackend(s3('mirror', 'copy-dst'))
    const bytes = randomBytes(200_000)
    await src.put('objects/12/3456', bytes)
    server.requestLog.reset()
    expect(await dst.copyFrom(src, 'objects/12/3456')).to.equal(true)
    expect(server.requestLog.count('GET')).to.equal(0)
    expect(server.requestLog.count('PUT')).to.equal(1)
    expect(server.requestLog.entries[0].url).to.match(/^\/mirror\/copy-dst\/objects\/12\/3456/)
    expect((await dst.get('objects/12/3456'))!.equals(bytes)).to.equal(true)
  })

  it('declines to copy from another kind of backend or other credentials', async () => {
    const dst = s3('mirror', 'decline')
    const dir = new DirectoryBackend(fs.mkdtempSync(path.join(os.tmpdir(), 'dir-')))
    expect(await dst.copyFrom(dir, 'x')).to.equal(false)
    const other = new S3Backend({
      flavour: 's3', bucket: 'tiles', prefix: '',
      settings: {endpoint: server.endpoint, region: 'auto', credentials: {accessKeyId: 'OTHER', secretAccessKey: 'OTHER'}, vars: {accessKeyId: 'A', secretAccessKey: 'B'}},
    })
    opened.push(other)
    server.requestLog.reset()
    expect(await dst.copyFrom(other, 'x')).to.equal(false)
    expect(server.requestLog.entries).to.have.length(0)
  })

  it('is what openBackend gives for an s3:// remote with an endpoint, credentials from the environment', async () => {
    const saved = {id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY}
    process.env.AWS_ACCESS_KEY_ID = S3RVER_KEY
    process.env.AWS_SECRET_ACCESS_KEY = S3RVER_SECRET
    try {
      const b = await openBackend({url: 's3://tiles/opened', endpoint: server.endpoint})
      opened.push(b)
      expect(b.location).to.equal('s3://tiles/opened')
      await b.put('tilesync.json', Buffer.from('{}'))
      expect((await b.get('tilesync.json'))?.toString()).to.equal('{}')
    } finally {
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID
      else process.env.AWS_ACCESS_KEY_ID = saved.id
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY
      else process.env.AWS_SECRET_ACCESS_KEY = saved.secret
    }
  })

  it('opens an r2:// remote with an explicit endpoint from R2_* variables in .env', async () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'envdir-'))
    fs.writeFileSync(path.join(cwd, '.env'), `R2_ACCESS_KEY_ID=${S3RVER_KEY}\nR2_SECRET_ACCESS_KEY="${S3RVER_SECRET}"\n`)
    const b = await openS3Backend({kind: 's3', flavour: 'r2', bucket: 'tiles', prefix: 'r2'}, {url: 'r2://tiles/r2', endpoint: server.endpoint}, {env: {}, cwd})
    opened.push(b)
    expect(b.location).to.equal('r2://tiles/r2')
    await b.put('a', Buffer.from('b'))
    expect((await b.get('a'))?.toString()).to.equal('b')
  })

  it('reads .env from the directory openBackend is given (the repository root), not the current one', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'envroot-'))
    fs.writeFileSync(path.join(root, '.env'), `AWS_ACCESS_KEY_ID=${S3RVER_KEY}\nAWS_SECRET_ACCESS_KEY=${S3RVER_SECRET}\n`)
    const saved = {id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY}
    delete process.env.AWS_ACCESS_KEY_ID
    delete process.env.AWS_SECRET_ACCESS_KEY
    try {
      const b = await openBackend({url: 's3://tiles/from-root', endpoint: server.endpoint}, root)
      opened.push(b)
      await b.put('k', Buffer.from('v'))
      expect((await b.get('k'))?.toString()).to.equal('v')
    } finally {
      if (saved.id !== undefined) process.env.AWS_ACCESS_KEY_ID = saved.id
      if (saved.secret !== undefined) process.env.AWS_SECRET_ACCESS_KEY = saved.secret
    }
  })

  it('names the bucket when it does not exist', async () => {
    const b = s3('no-such-bucket', '')
    const err = await b.get('x').then(() => null, (e: unknown) => e)
    expect(err).to.have.property('code', 'REMOTE_UNREACHABLE')
    expect((err as Error).message).to.include('"no-such-bucket"')
  })
})
