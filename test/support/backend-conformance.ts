import {expect} from 'chai'
import {randomBytes} from 'node:crypto'

import type {Backend} from '../../src/remote/backend.js'

export interface BackendUnderTest {
  backend: Backend
  cleanup: () => Promise<void>
}

async function listKeys(backend: Backend, prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const k of backend.list(prefix)) out.push(k.key)
  return out.sort()
}

/**
 * What every Backend must do, whatever it stores into. Each backend's test file only calls
 * this with a factory that gives a fresh, empty backend per test.
 */
export function runBackendConformance(name: string, makeBackend: () => Promise<BackendUnderTest>): void {
  describe(`Backend conformance: ${name}`, () => {
    let b: Backend
    let cleanup: (() => Promise<void>) | undefined

    beforeEach(async () => {
      const made = await makeBackend()
      b = made.backend
      cleanup = made.cleanup
    })

    afterEach(async () => {
      await cleanup?.()
      cleanup = undefined
    })

    it('reads back what was put, and an overwrite replaces it', async () => {
      await b.put('objects/ab/cdef', Buffer.from('first'))
      expect((await b.get('objects/ab/cdef'))?.toString()).to.equal('first')
      await b.put('objects/ab/cdef', Buffer.from('second, longer'))
      expect((await b.get('objects/ab/cdef'))?.toString()).to.equal('second, longer')
      await b.put('objects/ab/cdef', Buffer.from('3'))
      expect((await b.get('objects/ab/cdef'))?.toString()).to.equal('3')
    })

    it('gives null for a missing key', async () => {
      expect(await b.get('objects/00/missing')).to.equal(null)
      expect(await b.getVersioned('refs/heads/missing')).to.equal(null)
    })

    it('round-trips bytes exactly: empty, every byte value, 1 MiB', async () => {
      const samples: Record<string, Buffer> = {
        'blob/empty': Buffer.alloc(0),
        'blob/bytes': Buffer.from(Array.from({length: 512}, (_, i) => i % 256)),
        'blob/mib': randomBytes(1024 * 1024),
        'blob/text': Buffer.from('line one\r\nline two\n\u00e9\u{1F5FA}\n'),
      }
      for (const [k, v] of Object.entries(samples)) await b.put(k, v)
      for (const [k, v] of Object.entries(samples)) {
        const got = await b.get(k)
        expect(got, k).to.not.equal(null)
        expect(got!.length, k).to.equal(v.length)
        expect(got!.equals(v), k).to.equal(true)
        const versioned = await b.getVersioned(k)
        expect(versioned!.bytes.equals(v), k).to.equal(true)
        expect(versioned!.etag, k).to.be.a('string').and.not.equal('')
      }
      const listed = new Map<string, number>()
      for await (const k of b.list('blob/')) listed.set(k.key, k.size)
      expect(listed.get('blob/empty')).to.equal(0)
      expect(listed.get('blob/mib')).to.equal(1024 * 1024)
    })

    it('lists keys under a prefix, nested ones included, and nothing else', async () => {
      const keys = ['objects/aa/1', 'objects/aa/2', 'objects/bb/3', 'refs/heads/main', 'refs/heads/feature/x', 'refs/tags/v1', 'tilesync.json']
      for (const k of keys) await b.put(k, Buffer.from(k))
      expect(await listKeys(b, 'objects/')).to.deep.equal(['objects/aa/1', 'objects/aa/2', 'objects/bb/3'])
      expect(await listKeys(b, 'objects/aa/')).to.deep.equal(['objects/aa/1', 'objects/aa/2'])
      expect(await listKeys(b, 'refs/heads/')).to.deep.equal(['refs/heads/feature/x', 'refs/heads/main'])
      expect(await listKeys(b, 'refs/')).to.deep.equal(['refs/heads/feature/x', 'refs/heads/main', 'refs/tags/v1'])
      expect(await listKeys(b, 'nothing-here/')).to.deep.equal([])
      for await (const k of b.list('refs/heads/')) {
        expect(k.size).to.equal(Buffer.byteLength(k.key))
        expect(k.lastModified).to.be.a('number').and.greaterThan(0)
      }
    })

    it('deletes, and deleting again or deleting a missing key is fine', async () => {
      await b.put('objects/cc/1', Buffer.from('x'))
      await b.put('objects/cc/2', Buffer.from('y'))
      await b.delete('objects/cc/1')
      expect(await b.get('objects/cc/1')).to.equal(null)
      expect(await b.get('objects/cc/2')).to.not.equal(null)
      await b.delete('objects/cc/1')
      await b.delete('objects/zz/never-existed')
      expect(await listKeys(b, 'objects/')).to.deep.equal(['objects/cc/2'])
    })

    it('putIfMatch with null creates only when the key is absent', async () => {
      expect(await b.putIfMatch('refs/heads/main', Buffer.from('one\n'), null)).to.equal(true)
      expect(await b.putIfMatch('refs/heads/main', Buffer.from('two\n'), null)).to.equal(false)
      expect((await b.get('refs/heads/main'))?.toString()).to.equal('one\n')
    })

    it('putIfMatch replaces only if unchanged; a stale etag is refused', async () => {
      await b.put('refs/heads/main', Buffer.from('one\n'))
      const v1 = await b.getVersioned('refs/heads/main')
      expect(v1!.bytes.toString()).to.equal('one\n')
      expect(await b.putIfMatch('refs/heads/main', Buffer.from('two\n'), v1!.etag)).to.equal(true)
      const v2 = await b.getVersioned('refs/heads/main')
      expect(v2!.bytes.toString()).to.equal('two\n')
      expect(v2!.etag).to.not.equal(v1!.etag)
      // Someone still holding v1 loses.
      expect(await b.putIfMatch('refs/heads/main', Buffer.from('three\n'), v1!.etag)).to.equal(false)
      expect((await b.get('refs/heads/main'))?.toString()).to.equal('two\n')
      expect(await b.putIfMatch('refs/heads/main', Buffer.from('three\n'), v2!.etag)).to.equal(true)
      expect((await b.get('refs/heads/main'))?.toString()).to.equal('three\n')
    })

    it('putIfMatch with an etag on a missing key writes nothing', async () => {
      await b.put('refs/heads/gone', Buffer.from('x\n'))
      const v = await b.getVersioned('refs/heads/gone')
      await b.delete('refs/heads/gone')
      expect(await b.putIfMatch('refs/heads/gone', Buffer.from('y\n'), v!.etag)).to.equal(false)
      expect(await b.get('refs/heads/gone')).to.equal(null)
    })

    it('of concurrent putIfMatch calls with the same expected etag, exactly one wins', async () => {
      await b.put('refs/heads/race', Buffer.from('base\n'))
      for (let round = 0; round < 3; round++) {
        const seen = await b.getVersioned('refs/heads/race')
        const contenders = [0, 1, 2, 3].map((i) => Buffer.from(`round ${round} writer ${i}\n`))
        const results = await Promise.all(contenders.map((bytes) => b.putIfMatch('refs/heads/race', bytes, seen!.etag)))
        expect(results.filter(Boolean), `round ${round}`).to.have.length(1)
        const winner = contenders[results.indexOf(true)]
        expect((await b.get('refs/heads/race'))!.equals(winner)).to.equal(true)
      }
    })

    it('of concurrent create-only putIfMatch calls, exactly one wins', async () => {
      const contenders = [0, 1, 2, 3].map((i) => Buffer.from(`creator ${i}\n`))
      const results = await Promise.all(contenders.map((bytes) => b.putIfMatch('refs/heads/new', bytes, null)))
      expect(results.filter(Boolean)).to.have.length(1)
      expect((await b.get('refs/heads/new'))!.equals(contenders[results.indexOf(true)])).to.equal(true)
    })
  })
}
