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
    execFileSync(process.execPath, [path.join(dist, 'run-bench.js'), '--quadrants', '6', '--size', '64', '--runs', '1', '--only', 'clone', '--out', out, '--no-install'], {encoding: 'utf8', env: {...process.env, TILESYNC_NO_PROGRESS: '1'}})
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as {rows: {case: string; tool: string; medianSeconds: number}[]}
    const tools = results.rows.filter((r) => r.case === 'clone from a directory remote').map((r) => r.tool)
    expect(tools).to.deep.equal(['tilesync', 'cp -r of the remote', 'cp -r + sync -f', 'hashing alone, all cores', 'SQLite insert alone', `hashing + insert on ${os.availableParallelism()} cores (derived)`])
    for (const r of results.rows) expect(r.medianSeconds).to.be.greaterThan(0)
    expect(fs.readFileSync(path.join(out, 'results.md'), 'utf8')).to.include('SQLite insert alone')
  })

  it('--help lists every flag with examples', () => {
    const help = execFileSync(process.execPath, [path.join(dist, 'run-bench.js'), '--help'], {encoding: 'utf8'})
    for (const flag of ['--quadrants', '--size', '--noise', '--generation-ratio', '--runs', '--only', '--city-quadrants', '--city-runs', '--similar-quadrants', '--viewer-tiles', '--out', '--cache', '--no-install']) expect(help, flag).to.include(flag)
    expect(help).to.include('npm run bench -- --only city')
  })

  it('--noise and --generation-ratio shape the database, and the city case runs each command on both sizes', function () {
    this.timeout(240_000)
    const out = tmpDir('bench-city')
    const printed = execFileSync(process.execPath, [path.join(dist, 'run-bench.js'), '--quadrants', '4', '--city-quadrants', '9', '--size', '64', '--noise', '0.6', '--generation-ratio', '0.3', '--runs', '1', '--only', 'city', '--out', out, '--no-install'], {encoding: 'utf8', env: {...process.env, TILESYNC_NO_PROGRESS: '1'}})
    expect(printed).to.include('noise 0.6, generation ratio 0.3')
    // The generator keys its cache by the shape: both databases were made with the new one.
    const cached = fs.readdirSync(path.join(out, 'cache')).filter((f) => f.endsWith('.db'))
    expect(cached.sort().map((f) => f.replace(/-r1.*$/, ''))).to.deep.equal(['bench-q4-s64-n0.6-g0.3', 'bench-q9-s64-n0.6-g0.3'])
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as {rows: {case: string; tool: string; medianSeconds: number; maxRssMb: number | null; note?: string}[]}
    const commands = ['first commit', 'status, nothing changed', 'commit after 1% (1 tiles)', 'checkout HEAD~1', 'push to a directory remote', 'clone from a directory remote']
    for (const size of ['bench database', 'city database']) {
      const here = results.rows.filter((r) => r.case.startsWith('city: ') && r.case.includes(`, ${size} (`))
      expect(here.map((r) => r.case.slice('city: '.length, r.case.indexOf(`, ${size}`))), size).to.deep.equal(commands)
      for (const r of here) expect(r.medianSeconds, r.case).to.be.greaterThan(0)
    }
    // Each city row says how it compares with the bench database's.
    for (const r of results.rows.filter((r) => r.case.includes('city database'))) expect(r.note, r.case).to.match(/x the bench database's time/)
    expect(printed).to.match(/city case: the city database holds [\d.]+x the bench database's bytes/)
    // The work directories (databases, stores, remote, clone) are gone afterwards.
    expect(fs.existsSync(path.join(out, 'work', 'city'))).to.equal(false)
  })
})
