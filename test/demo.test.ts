import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {REPO_ROOT} from './support/cli.js'
import {tmpDir} from './support/fixtures.js'

describe('npm run demo', function () {
  this.timeout(300_000)

  it('runs the whole workflow on the sample database and the clone equals the original', () => {
    const out = path.join(tmpDir('demo'), 'out')
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist', 'src', 'demo', 'run-demo.js'), out], {encoding: 'utf8', env: {...process.env, CI: 'true'}})
    expect(r.status, r.stdout + r.stderr).to.equal(0)
    expect(r.stdout).to.contain('The clone equals the original')
    for (const step of ['$ tilesync init', '$ tilesync status', '$ tilesync diff HEAD~1 HEAD', '$ tilesync checkout HEAD~1', '$ tilesync push origin', '$ tilesync clone']) expect(r.stdout).to.contain(step)
    expect(fs.existsSync(path.join(out, 'tile-0-0.png'))).to.equal(true)
    // The real shape: the queue left out (and untouched by checkout), a layer the app added, a NULL blob.
    expect(r.stdout).to.contain('generation_queue looks like a work queue or log')
    expect(r.stdout).to.contain('schema: column dark_mode added (image layer)')
    expect(r.stdout).to.match(/M tile 1,-1 +dark_mode removed \(was /)
    expect(r.stdout).to.contain('dark_mode removed from tile 1,-1')
    expect(r.stdout).to.match(/cloned work queue: +0 items/)
    // The narration says what the step really did: read each claim back from `tilesync status`.
    const narration = r.stdout.slice(r.stdout.indexOf('# The pipeline'), r.stdout.indexOf('$ tilesync status'))
    const status = r.stdout.slice(r.stdout.indexOf('$ tilesync status'), r.stdout.indexOf('$ tilesync commit -m "night run'))
    expect(narration).to.contain('regenerates two tiles')
    expect(status.match(/M tile \S+ +generation: [0-9a-f]{10} \(/g), 'two tiles regenerated (they had a generation)').to.have.length(2)
    expect(narration).to.contain('re-renders a third (with a note)')
    expect(status.match(/M tile \S+ +render: [0-9a-f]{10} .*; columns: notes/g)).to.have.length(1)
    expect(narration).to.contain('takes the generation\n# off a fourth')
    expect(status.match(/generation removed \(was/g)).to.have.length(1)
    expect(narration).to.contain('bumps metadata.schema_version')
    expect(status).to.match(/table metadata: 0 added, 1 modified[\s\S]*M schema_version/)
    expect(narration).to.contain('fills it for two tiles')
    expect(status.match(/M tile \S+ +dark_mode added \(/g)).to.have.length(2)
    expect(status).to.contain('tiles (quadrants): 0 added, 6 modified, 0 deleted')
    expect(r.stdout).to.contain('The clone equals the original in every versioned table (the ignored queue is not cloned)')
  })
})
