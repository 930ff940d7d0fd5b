import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import {hashBytes} from '../src/core/hash.js'
import {HashingPool} from '../src/store/hashing-pool.js'
import {LocalObjectStore} from '../src/store/local-object-store.js'
import {tmpDir} from './support/fixtures.js'

const poolModule = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'store', 'hashing-pool.js')

function freshStore(): {dir: string; store: LocalObjectStore} {
  const dir = tmpDir('pool')
  fs.mkdirSync(path.join(dir, 'objects'), {recursive: true})
  fs.mkdirSync(path.join(dir, 'tmp'), {recursive: true})
  return {dir, store: new LocalObjectStore(path.join(dir, 'objects'), path.join(dir, 'tmp'))}
}

/** poolSize('store') and poolSize('hash') in a fresh process with `env`. */
function sizesWith(env: NodeJS.ProcessEnv): {store: number; hash: number} {
  const script = `const {poolSize} = await import(${JSON.stringify(poolModule)}); process.stdout.write(JSON.stringify({store: poolSize('store'), hash: poolSize('hash')}))`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8', env: {...process.env, TILESYNC_HASH_WORKERS: '', ...env}})
  expect(r.status, r.stderr).to.equal(0)
  return JSON.parse(r.stdout) as {store: number; hash: number}
}

describe('hashing pool', () => {
  it('with the native BLAKE3 a storing pool starts one worker and a hashing pool none; with blake3-wasm every core gets one', () => {
    expect(sizesWith({TILESYNC_BLAKE3: ''})).to.deep.equal({store: 1, hash: 0})
    const cores = Math.max(1, Math.min(os.availableParallelism(), 8))
    expect(sizesWith({TILESYNC_BLAKE3: 'wasm'})).to.deep.equal({store: cores, hash: cores})
    // The override, and a storing pool never goes below one worker (it writes the packs).
    expect(sizesWith({TILESYNC_HASH_WORKERS: '3'})).to.deep.equal({store: 3, hash: 3})
    expect(sizesWith({TILESYNC_HASH_WORKERS: '0'})).to.deep.equal({store: 1, hash: 0})
  })

  it('a hashing pool of no workers hashes in place, big blobs too', async () => {
    const {store} = freshStore()
    const pool = new HashingPool(store, 'hash', {size: 0})
    const items = [randomBytes(100), randomBytes(200_000), randomBytes(3_000_000)]
    try {
      expect(await Promise.all(items.map((b) => pool.put(b)))).to.deep.equal(items.map((b) => hashBytes(b)))
      expect(await pool.putVerified(items[1], hashBytes(items[1]))).to.equal(hashBytes(items[1]))
      // The bytes are not detached: nothing was handed to a worker.
      expect(items[2].length).to.equal(3_000_000)
    } finally {
      await pool.close()
    }
    // Hashing only: nothing stored.
    expect(fs.readdirSync(store.objectsDir)).to.deep.equal([])
  })

  it('a linked blob\'s verified bytes reach the first read without reading the file again, within the trust window only', async () => {
    const {dir, store} = freshStore()
    const remote = path.join(dir, 'remote')
    fs.mkdirSync(remote)
    const bytes = randomBytes(300_000)
    const id = hashBytes(bytes)
    const source = path.join(remote, id)
    fs.writeFileSync(source, bytes)
    await store.withTrustWindow(async () => {
      const pool = new HashingPool(store, 'store', {packed: true})
      try {
        expect(await pool.link(source, id)).to.deep.equal({id, size: bytes.length})
      } finally {
        await pool.close()
      }
      // The file is linked into the store; overwrite the store's copy in place to show the
      // first read does not look at it (the bytes came with the worker's reply)...
      const linked = store.pathOf(id)
      expect(fs.statSync(linked).nlink).to.equal(2)
      fs.rmSync(linked)
      fs.writeFileSync(linked, Buffer.from('not these bytes'))
      expect((await store.get(id)).equals(bytes)).to.equal(true)
      // ...and that they are handed over once: the next read is the file's, and verified
      // (no rehash inside the window, so it is returned as it is on disk).
      expect((await store.readRaw(id))!.toString()).to.equal('not these bytes')
      expect((await store.get(id)).toString()).to.equal('not these bytes')
    })
    // Outside a trust window nothing is kept: a worker's bytes are dropped.
    const other = randomBytes(200_000)
    const otherId = hashBytes(other)
    fs.writeFileSync(path.join(remote, otherId), other)
    const pool = new HashingPool(store, 'store', {packed: true})
    try {
      await pool.link(path.join(remote, otherId), otherId)
    } finally {
      await pool.close()
    }
    fs.rmSync(store.pathOf(otherId))
    let error: unknown
    await store.get(otherId).catch((e: unknown) => {
      error = e
    })
    expect((error as {code?: string}).code).to.equal('OBJECT_MISSING')
  })

  it('a download verified and packed inside the trust window comes back to the database writer with its reply', async () => {
    const {store} = freshStore()
    const items = Array.from({length: 12}, () => randomBytes(40_000))
    const ids = items.map((b) => hashBytes(b))
    await store.withTrustWindow(async () => {
      const pool = new HashingPool(store, 'store', {packed: true, size: 1})
      try {
        // Copies: the pool takes ownership of what it is given.
        expect(await Promise.all(items.map((b, i) => pool.putVerified(Buffer.from(b), ids[i])))).to.deep.equal(ids)
      } finally {
        await pool.close()
      }
      // The last ones went into a pack; spoil the packed copy of the last one on disk.
      const at = await store.packs.lookup(ids[11])
      expect(at, 'packed').to.not.equal(undefined)
      const fd = fs.openSync(store.packs.packPath(at!.pack), 'r+')
      fs.writeSync(fd, Buffer.alloc(at!.length, 0), 0, at!.length, at!.offset)
      fs.closeSync(fd)
      // The first read gets the bytes the worker verified, not the file's.
      expect((await store.get(ids[11])).equals(items[11])).to.equal(true)
    })
    // Outside the window nothing is handed, and the spoiled copy is found out.
    let error: unknown
    await store.get(ids[11]).catch((e: unknown) => {
      error = e
    })
    expect((error as {code?: string}).code).to.equal('OBJECT_CORRUPT')
  })

  it('the verified bytes kept for the database writer are bounded: past the bound they are read from the file', async () => {
    const {store} = freshStore()
    await store.withTrustWindow(async () => {
      const big = Array.from({length: 4}, () => randomBytes(8 * 1024 * 1024))
      const ids = big.map((b) => hashBytes(b))
      for (const [i, b] of big.entries()) {
        await store.put(b, ids[i])
        store.noteVerified(ids[i])
        store.keepVerifiedBytes(ids[i], b)
      }
      // 24 MiB: the first three (24 MiB) are kept, the fourth is not.
      for (const [i] of big.entries()) fs.writeFileSync(store.pathOf(ids[i]), Buffer.from(`file ${i}`))
      const got = await Promise.all(ids.map((id) => store.get(id)))
      expect(got.slice(0, 3).every((g, i) => g.equals(big[i]))).to.equal(true)
      expect(got[3].toString()).to.equal('file 3')
    })
  })
})
