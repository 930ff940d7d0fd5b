import {expect} from 'chai'

import {ensureBenchDb} from '../src/bench/generate-bench-db.js'
import {initRepository} from '../src/ops/init.js'
import {tmpDir, withDb} from './support/fixtures.js'
import * as fs from 'node:fs'
import * as path from 'node:path'

describe('the benchmark database', () => {
  it('has the shape the pipeline leaves: negative coordinates, columns and layers added at run time, the work queue', async function () {
    this.timeout(120_000)
    const dir = tmpDir('bench-db')
    const bench = await ensureBenchDb(dir, {quadrants: 64, imageSize: 16, noise: 0.2, generationRatio: 0.9, seed: 1})
    const cols = withDb(bench.file, (d) => (d.prepare(`SELECT name FROM pragma_table_info('quadrants')`).all() as Array<{name: string}>).map((c) => c.name))
    expect(cols.slice(-6)).to.deep.equal(['flagged', 'water_type', 'is_water', 'water_mask', 'starred', 'dark_mode'])
    const counts = withDb(bench.file, (d) => d.prepare(`SELECT min(quadrant_x) AS x0, min(quadrant_y) AS y0, count(dark_mode) AS dark, count(water_mask) AS water, sum(is_water) AS wet,
      (SELECT count(*) FROM generation_queue) AS queue FROM quadrants`).get()) as {x0: number; y0: number; dark: number; water: number; wet: number; queue: number}
    expect(counts.x0).to.be.lessThan(0)
    expect(counts.y0).to.be.lessThan(0)
    expect(counts.dark).to.be.greaterThan(0)
    expect(counts.water).to.be.greaterThan(0)
    expect(counts.wet).to.be.greaterThan(0)
    expect(counts.queue).to.equal(50)
    // What init then does with it: the queue is left out, the two added BLOB columns are layers.
    const project = tmpDir('bench-project')
    fs.mkdirSync(path.join(project, 'generations', 'v01'), {recursive: true})
    fs.copyFileSync(bench.file, path.join(project, 'generations', 'v01', 'quadrants.db'))
    const init = await initRepository({dir: project})
    expect(init.ignored).to.deep.equal(['generation_queue'])
    expect(init.imageColumns).to.deep.equal(['render', 'generation', 'water_mask', 'dark_mode'])
  })
})
