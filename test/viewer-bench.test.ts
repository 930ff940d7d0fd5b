import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import {tmpDir} from './support/fixtures.js'

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'bench')

describe('the benchmark\'s viewer case', () => {
  it('reports the pyramid from an empty cache, its rebuild after 100 changed tiles, the page to the whole map and a zoom', function () {
    this.timeout(300_000)
    const out = tmpDir('bench-viewer')
    execFileSync(process.execPath, [path.join(dist, 'run-bench.js'), '--quadrants', '6', '--size', '64', '--runs', '1', '--only', 'viewer', '--viewer-tiles', '2000', '--out', out], {encoding: 'utf8', env: {...process.env, TILESYNC_NO_PROGRESS: '1'}})
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as {rows: {case: string; tool: string; medianSeconds: number; note?: string}[]}
    expect(results.rows.map((r) => r.case)).to.deep.equal([
      'viewer: pyramid of 2,052 tiles, empty cache',
      'viewer: pyramid after 100 tiles changed',
      'viewer: page to whole map (2,052 tiles)',
      'viewer: zoom to one tile',
    ])
    for (const r of results.rows) expect(r.medianSeconds).to.be.greaterThan(0)
    // 100 tiles spread over a 2,016-tile map touch most of its leaves: the rebuild says how many images it remade.
    expect(results.rows[1].note).to.match(/^\d+ of \d+ images remade$/)
  })
})
