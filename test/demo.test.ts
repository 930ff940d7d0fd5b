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
    expect(r.stdout).to.contain('The clone equals the original.')
    for (const step of ['$ tilesync init', '$ tilesync status', '$ tilesync diff HEAD~1 HEAD', '$ tilesync checkout HEAD~1', '$ tilesync push origin', '$ tilesync clone']) expect(r.stdout).to.contain(step)
    expect(fs.existsSync(path.join(out, 'tile-0-0.png'))).to.equal(true)
    // The real shape: the queue left out (and untouched by checkout), a layer the app added, a NULL blob.
    expect(r.stdout).to.contain('generation_queue looks like a work queue or log')
    expect(r.stdout).to.contain('schema: column dark_mode added (image layer)')
    expect(r.stdout).to.match(/M tile 1,-1 +dark_mode removed \(was /)
    expect(r.stdout).to.contain('dark_mode removed from tile 1,-1')
    expect(r.stdout).to.match(/cloned work queue: +0 items/)
  })
})
