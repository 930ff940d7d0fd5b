import {expect} from 'chai'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type {AddressInfo} from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

import type {Backend} from '../src/remote/backend.js'
import {DirectoryBackend} from '../src/remote/directory-backend.js'
import {openS3Backend} from '../src/remote/s3/open-s3-backend.js'
import {verifyBackend as verifyRemote} from '../src/remote/object-store/verify-backend.js'
import {S3RVER_KEY, S3RVER_SECRET, startS3Server, type S3TestServer} from './support/s3-server.js'

const WRONG_SECRET = 'wr0ng-secret-Hh4Ttq9Zr-never-print-me'

describe('verifyRemote', () => {
  let server: S3TestServer
  const opened: Backend[] = []
  const noDotenv = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-'))

  before(async () => {
    server = await startS3Server({buckets: ['tiles']})
  })
  after(async () => {
    for (const b of opened) await b.close?.()
    await server.stop()
  })

  async function r2(accessKeyId: string, secret: string): Promise<Backend> {
    const b = await openS3Backend(
      {kind: 's3', flavour: 'r2', bucket: 'tiles', prefix: 'team/maps'},
      {url: 'r2://tiles/team/maps', endpoint: server.endpoint},
      {env: {R2_ACCESS_KEY_ID: accessKeyId, R2_SECRET_ACCESS_KEY: secret}, cwd: noDotenv},
    )
    opened.push(b)
    return b
  }

  async function keys(b: Backend, prefix: string): Promise<string[]> {
    const out: string[] = []
    for await (const k of b.list(prefix)) out.push(k.key)
    return out
  }

  it('passes every check on a working S3 remote and leaves nothing behind', async () => {
    const b = await r2(S3RVER_KEY, S3RVER_SECRET)
    const results = await verifyRemote(b)
    expect(results.map((r) => r.check).sort()).to.deep.equal(['delete', 'list', 'read', 'write'])
    for (const r of results) expect(r.ok, `${r.check}: ${r.detail}`).to.equal(true)
    expect(await keys(b, 'tmp/')).to.deep.equal([])
  })

  it('passes on a directory remote too', async () => {
    const results = await verifyRemote(new DirectoryBackend(fs.mkdtempSync(path.join(os.tmpdir(), 'verify-dir-'))))
    for (const r of results) expect(r.ok, `${r.check}: ${r.detail}`).to.equal(true)
  })

  it('reports failures with wrong credentials, without throwing and without the secret', async () => {
    const b = await r2('WRONGKEYID', WRONG_SECRET)
    const results = await verifyRemote(b)
    expect(results).to.have.length(4)
    for (const r of results) {
      expect(r.ok, r.check).to.equal(false)
      expect(r.detail).to.include('REMOTE_AUTH').and.include('R2_ACCESS_KEY_ID')
    }
    expect(JSON.stringify(results)).to.not.include(WRONG_SECRET)
  })

  it('reports a wrong secret by the variable that holds it', async () => {
    // s3rver checks only the key id of a V4 signature, so a server that refuses every
    // signature stands in for R2 here.
    const refusing = http.createServer((req, res) => {
      req.resume()
      const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error>'
      res.writeHead(403, {'content-type': 'application/xml'})
      res.end(body)
    })
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve))
    try {
      const b = await openS3Backend(
        {kind: 's3', flavour: 'r2', bucket: 'tiles', prefix: ''},
        {url: 'r2://tiles', endpoint: `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`},
        {env: {R2_ACCESS_KEY_ID: S3RVER_KEY, R2_SECRET_ACCESS_KEY: WRONG_SECRET}, cwd: noDotenv},
      )
      opened.push(b)
      const results = await verifyRemote(b)
      expect(results).to.have.length(4)
      for (const r of results) {
        expect(r.ok, r.check).to.equal(false)
        expect(r.detail).to.include('REMOTE_AUTH').and.include('R2_SECRET_ACCESS_KEY')
      }
      expect(JSON.stringify(results)).to.not.include(WRONG_SECRET)
    } finally {
      refusing.closeAllConnections()
      await new Promise((r) => refusing.close(r))
    }
  })

  it('cleans up the scratch key even when a later check fails', async () => {
    const inner = new DirectoryBackend(fs.mkdtempSync(path.join(os.tmpdir(), 'verify-half-')))
    let deletes = 0
    const broken: Backend = {
      location: inner.location,
      get: (k) => inner.get(k),
      getVersioned: (k) => inner.getVersioned(k),
      put: (k, v) => inner.put(k, v),
      putIfMatch: (k, v, e) => inner.putIfMatch(k, v, e),
      list: () => {
        throw new Error('listing is broken')
      },
      delete: (k) => {
        deletes++
        return deletes === 1 ? Promise.reject(new Error('delete refused once')) : inner.delete(k)
      },
    }
    const results = await verifyRemote(broken)
    expect(results.find((r) => r.check === 'list')).to.include({ok: false})
    expect(results.find((r) => r.check === 'list')!.detail).to.include('listing is broken')
    expect(results.find((r) => r.check === 'delete')).to.include({ok: false})
    expect(await keys(inner, 'tmp/')).to.deep.equal([])
  })
})
