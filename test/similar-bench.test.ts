import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import {tmpDir} from './support/fixtures.js'

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'bench')

/** Keeps `npm run bench -- --only similar` working on a tiny history; asserts what it reports, never how fast. */
describe('the benchmark: similar', () => {
  it('times similar with nothing cached, then --tile and --duplicates with the hashes cached', function () {
    this.timeout(180_000)
    const out = tmpDir('bench-similar')
    execFileSync(process.execPath, [path.join(dist, 'run-bench.js'), '--quadrants', '4', '--size', '32', '--runs', '2', '--only', 'similar', '--similar-quadrants', '30', '--out', out], {encoding: 'utf8', env: {...process.env, TILESYNC_NO_PROGRESS: '1'}})
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as {rows: Array<{case: string; tool: string; runs: number; medianSeconds: number; target?: string}>}
    const rows = results.rows.filter((r) => r.case.startsWith('similar, 30 tiles'))
    expect(rows.map((r) => [r.tool, r.runs])).to.deep.equal([
      ['tilesync similar --duplicates, nothing cached', 1],
      ['tilesync similar --tile, cached', 2],
      ['tilesync similar --duplicates, cached', 2],
    ])
    expect(rows[1].target).to.equal('< 1 s')
    for (const r of rows) expect(r.medianSeconds).to.be.greaterThan(0)
    expect(fs.readFileSync(path.join(out, 'results.md'), 'utf8')).to.include('tilesync similar --tile, cached')
  })
})
