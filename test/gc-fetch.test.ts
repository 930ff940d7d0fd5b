import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {hashBytes} from '../src/core/hash.js'
import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {fetchRemote} from '../src/ops/fetch.js'
import {fsckLocal} from '../src/ops/fsck.js'
import {gc} from '../src/ops/gc.js'
import {initRepository} from '../src/ops/init.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {Workspace} from '../src/workspace/workspace.js'
import {makeProject, png, tmpDir} from './support/fixtures.js'
import {setGeneration} from './support/edit.js'

const author = {name: 'T', email: 't@x'}

describe('gc and fetch together', () => {
  it('an old unreachable object that a fetch reuses is refreshed, so gc keeps it and fsck stays clean', async () => {
    const {dir, db} = makeProject()
    await initRepository({dir})
    const a = await Workspace.open(dir)
    await commit(a, {message: 'one', author})
    const remote = path.join(tmpDir('remote'), 'r')
    await addRemote(a.repo, 'origin', remote)
    await push(a, {})
    const bDir = path.join(tmpDir('clone'), 'b')
    await clone({url: remote, dir: bDir})
    const b = await Workspace.open(bDir)

    setGeneration(db, 0, 0, 9090)
    await commit(a, {message: 'two', author})
    await push(a, {})
    // b already holds the new tile from elsewhere, unreachable and two hours old.
    const id = hashBytes(png(9090))
    await b.repo.store.put(png(9090))
    const file = b.repo.store.pathOf(id)
    const old = new Date(Date.now() - 2 * 3600_000)
    fs.utimesSync(file, old, old)

    await fetchRemote(b, {})
    expect(fs.statSync(file).mtimeMs).to.be.greaterThan(Date.now() - 60_000)
    await gc(b, {graceMs: 3600_000})
    expect(await b.repo.store.has(id)).to.equal(true)
    expect((await fsckLocal(b)).ok).to.equal(true)
  })
})
