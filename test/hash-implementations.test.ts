import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import {activeHashImplementation, createHasher, hashBytes, hashImplementation} from '../src/core/hash.js'
import {cli, cliJson, REPO_ROOT} from './support/cli.js'
import {makeProject, tmpDir} from './support/fixtures.js'

const hashModule = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'core', 'hash.js')

/** Deterministic bytes that do not repeat within a chunk (a constant fill would hide a misplaced chunk). */
function bytesOf(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length)
  let x = seed >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    b[i] = x & 0xff
  }
  return b
}

// BLAKE3 works in 1024-byte chunks and, in the native code, 64 KiB SIMD batches: every input
// on either side of those boundaries, plus the empty input, one byte and a 10 MB tile.
const INPUTS: Array<[string, Buffer]> = [
  ['empty', Buffer.alloc(0)],
  ['1 byte', Buffer.from([0x89])],
  ...[1023, 1024, 1025, 2048, 65_535, 65_536, 65_537, 131_072].map((n): [string, Buffer] => [`${n} bytes`, bytesOf(n, n)]),
  ['a 10 MB tile', bytesOf(10_000_000, 7)],
]

/** BLAKE3 of the empty input, from the BLAKE3 specification's test vectors. */
const EMPTY_ID = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'

describe('BLAKE3: native and WebAssembly', () => {
  const wasm = hashImplementation('wasm')!
  const native = hashImplementation('native')

  it('the native binary is installed from the lockfile and loads here (linux-x64-gnu)', function () {
    const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {packages: Record<string, {version?: string; optional?: boolean; os?: string[]; cpu?: string[]}>}
    const main = lock.packages['node_modules/@napi-rs/blake-hash']
    expect(main, 'the lockfile records @napi-rs/blake-hash').to.not.equal(undefined)
    // Every platform's binary package is in the lockfile, so `npm ci` anywhere picks its own.
    for (const platform of ['linux-x64-gnu', 'linux-arm64-gnu', 'darwin-x64', 'darwin-arm64', 'win32-x64-msvc']) {
      const p = lock.packages[`node_modules/@napi-rs/blake-hash-${platform}`]
      expect(p, platform).to.include({version: main.version, optional: true})
    }
    const glibc = Boolean((process.report?.getReport() as {header?: {glibcVersionRuntime?: string}} | undefined)?.header?.glibcVersionRuntime)
    if (process.platform !== 'linux' || process.arch !== 'x64' || !glibc) {
      this.skip()
    }
    expect(fs.existsSync(path.join(REPO_ROOT, 'node_modules', '@napi-rs', 'blake-hash-linux-x64-gnu', 'blake.linux-x64-gnu.node')), 'binary installed').to.equal(true)
    expect(native, 'native BLAKE3 loads').to.not.equal(null)
    if (process.env.TILESYNC_BLAKE3 !== 'wasm') expect(activeHashImplementation()).to.equal('native')
  })

  it('gives the same ids as blake3-wasm for the empty input, 1 byte, chunk boundaries and a 10 MB tile', () => {
    expect(wasm.hash(Buffer.alloc(0))).to.equal(EMPTY_ID)
    expect(native, 'native BLAKE3 loads').to.not.equal(null)
    for (const [name, bytes] of INPUTS) {
      const id = wasm.hash(bytes)
      expect(native!.hash(bytes), name).to.equal(id)
      expect(hashBytes(bytes), name).to.equal(id)
      // A view into a larger buffer hashes only its own bytes.
      const padded = Buffer.concat([Buffer.from('xx'), bytes, Buffer.from('yy')])
      expect(native!.hash(new Uint8Array(padded.buffer, padded.byteOffset + 2, bytes.length)), `${name}, a view`).to.equal(id)
    }
  })

  it('incremental hashing in uneven pieces gives the one-shot id with either implementation', () => {
    for (const impl of [wasm, native!]) {
      for (const [name, bytes] of INPUTS) {
        const h = impl.createHasher()
        // Pieces of 1, 1000, 1023 and 7000 bytes in turn, so pieces straddle every boundary.
        const sizes = [1, 1000, 1023, 7000]
        for (let at = 0, i = 0; at < bytes.length; i++) {
          const n = Math.min(sizes[i % sizes.length], bytes.length - at)
          h.update(bytes.subarray(at, at + n))
          at += n
        }
        expect(h.digestHex(), name).to.equal(wasm.hash(bytes))
      }
    }
    const h = createHasher()
    h.update(Buffer.from('ab'))
    h.update(new Uint8Array([0x63]))
    expect(h.digestHex()).to.equal(wasm.hash(Buffer.from('abc')))
  })

  it('agrees with b3sum on the same inputs', function () {
    this.timeout(60_000)
    if (spawnSync('sh', ['-c', 'command -v b3sum']).status !== 0) {
      // test/support/system-deps.sh installs b3sum where it can (root with apt-get).
      console.log('      (b3sum is not installed: this comparison is skipped; `apt-get install b3sum` enables it)')
      this.skip()
    }
    const dir = tmpDir('b3sum')
    const files = INPUTS.map(([, bytes], i) => {
      const f = path.join(dir, `input-${i}`)
      fs.writeFileSync(f, bytes)
      return f
    })
    const out = spawnSync('b3sum', ['--no-names', ...files], {encoding: 'utf8'})
    expect(out.status, out.stderr).to.equal(0)
    const ids = out.stdout.trim().split('\n')
    INPUTS.forEach(([name, bytes], i) => {
      expect(ids[i], name).to.equal(wasm.hash(bytes))
      expect(ids[i], name).to.equal(native!.hash(bytes))
    })
  })

  it('TILESYNC_BLAKE3=wasm makes a process hash with blake3-wasm, and the ids do not change', () => {
    const script = `const h = await import(${JSON.stringify(hashModule)}); process.stdout.write(JSON.stringify([h.activeHashImplementation(), h.hashBytes(Buffer.from('tile'))]))`
    const run = (env: NodeJS.ProcessEnv): [string, string] => {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8', env: {...process.env, ...env}})
      expect(r.status, r.stderr).to.equal(0)
      return JSON.parse(r.stdout) as [string, string]
    }
    const forced = run({TILESYNC_BLAKE3: 'wasm'})
    const usual = run({TILESYNC_BLAKE3: ''})
    expect(forced[0]).to.equal('wasm')
    expect(usual[0]).to.equal(native ? 'native' : 'wasm')
    expect(forced[1]).to.equal(usual[1])
    expect(forced[1]).to.equal(wasm.hash(Buffer.from('tile')))
  })

  it('a repository committed with one implementation is sound to the other (fsck re-hashes every object)', function () {
    this.timeout(120_000)
    // Tiles over 16 KiB and enough of them that the commit hashes on its workers and writes packs.
    const shape = {width: 6, height: 6, imageSize: 128, noise: 0.6}
    const {dir} = makeProject(shape)
    expect(cli(dir, ['init']).code).to.equal(0)
    expect(cli(dir, ['commit', '-m', 'native'], {TILESYNC_BLAKE3: ''}).code).to.equal(0)
    const checked = cliJson<{ok: boolean; objects: number}>(dir, ['fsck'], {TILESYNC_BLAKE3: 'wasm'})
    expect(checked.ok).to.equal(true)
    expect(checked.objects).to.be.greaterThan(36)
    const other = makeProject(shape)
    expect(cli(other.dir, ['init']).code).to.equal(0)
    expect(cli(other.dir, ['commit', '-m', 'wasm'], {TILESYNC_BLAKE3: 'wasm'}).code).to.equal(0)
    expect(cliJson<{ok: boolean}>(other.dir, ['fsck'], {TILESYNC_BLAKE3: ''}).ok).to.equal(true)
    // The same database gives the same snapshot id with either.
    const tree = (d: string): string => cliJson<{tree: string}>(d, ['show', 'HEAD']).tree
    expect(tree(dir)).to.match(/^[0-9a-f]{64}$/).and.to.equal(tree(other.dir))
  })
})
