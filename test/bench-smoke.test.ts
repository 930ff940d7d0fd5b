import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import {tmpDir} from './support/fixtures.js'

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'bench')

/**
 * `npm run bench` is not run by CI (it takes minutes and its figures mean nothing on a busy
 * machine); these runs on a tiny database keep it working. They assert what it reports, never
 * how fast anything was.
 */
describe('the benchmark', () => {
  it('clone-floors hashes, and inserts, every file under a directory, nested ones too', () => {
    const dir = tmpDir('clone-floors')
    fs.mkdirSync(path.join(dir, 'ab', 'cd'), {recursive: true})
    const files = {'one': Buffer.alloc(40_000, 1), 'ab/two': Buffer.alloc(70_000, 2), 'ab/cd/three': Buffer.from('x')}
    for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), bytes)
    for (const which of ['hash', 'insert']) {
      const out = JSON.parse(execFileSync(process.execPath, [path.join(dist, 'clone-floors.js'), which, dir], {encoding: 'utf8', cwd: tmpDir('floor-cwd')})) as {seconds: number; bytes: number; files: number}
      expect(out, which).to.include({files: 3, bytes: 40_000 + 70_000 + 1})
      expect(out.seconds, which).to.be.a('number').and.to.be.at.least(0)
    }
  })

  it('the clone case reports the clone, cp, cp + sync, hashing and inserting alone, and the floor the two make', function () {
    this.timeout(180_000)
    const out = tmpDir('bench-out')
    execFileSync(process.execPath, [path.join(dist, 'run-bench.js'), '--quadrants', '6', '--size', '64', '--runs', '1', '--only', 'clone', '--out', out], {encoding: 'utf8', env: {...process.env, TILESYNC_NO_PROGRESS: '1'}})
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as {rows: {case: string; tool: string; medianSeconds: number}[]}
    const tools = results.rows.filter((r) => r.case === 'clone from a directory remote').map((r) => r.tool)
    expect(tools).to.deep.equal(['tilesync', 'cp -r of the remote', 'cp -r + sync -f', 'hashing alone, all cores', 'SQLite insert alone', `hashing + insert on ${os.availableParallelism()} cores (derived)`])
    for (const r of results.rows) expect(r.medianSeconds).to.be.greaterThan(0)
    expect(fs.readFileSync(path.join(out, 'results.md'), 'utf8')).to.include('SQLite insert alone')
  })
})
