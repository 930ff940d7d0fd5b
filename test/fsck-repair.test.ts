import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {commit} from '../src/ops/commit.js'
import {fsckLocal} from '../src/ops/fsck.js'
import {initRepository} from '../src/ops/init.js'
import {push} from '../src/ops/push.js'
import {addRemote, removeRemote} from '../src/ops/remotes.js'
import {Workspace} from '../src/workspace/workspace.js'
import {cli} from './support/cli.js'
import {makeProject, tmpDir} from './support/fixtures.js'
import {author, run} from './support/shapes.js'

async function pushedHistory(options: {imageSize?: number; noise?: number} = {}): Promise<{dir: string; ws: Workspace; commits: string[]}> {
  const {dir, db} = makeProject(options)
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  const commits: string[] = []
  for (let i = 0; i < 3; i++) {
    run(db, `UPDATE quadrants SET notes = 'edit ${i}' WHERE quadrant_x = 0 AND quadrant_y = 0`)
    commits.push((await commit(ws, {message: `c${i}`, author})).id!)
  }
  await addRemote(ws.repo, 'origin', path.join(tmpDir('fsck-remote'), 'r'))
  await push(ws, {})
  return {dir, ws, commits}
}

const loose = (dir: string, id: string): string => path.join(dir, '.tilesync', 'objects', id.slice(0, 2), id.slice(2))

describe('fsck --repair', () => {
  it('brings back a commit missing in the middle of history from the remote (it named the problem and fixed nothing)', async () => {
    const {dir, commits} = await pushedHistory()
    fs.rmSync(loose(dir, commits[1]))
    const found = await fsckLocal(await Workspace.open(dir))
    expect(found.problems.map((p) => p.kind)).to.deep.equal(['missing-parent'])
    const fixed = await fsckLocal(await Workspace.open(dir), {repair: true})
    expect(fixed.ok, JSON.stringify(fixed.problems)).to.equal(true)
    expect(fixed.repaired).to.equal(1)
    expect(fs.existsSync(loose(dir, commits[1]))).to.equal(true)
    expect(cli(dir, ['fsck']).code).to.equal(0)
  })

  it('writes a lost pack index again from its pack, with no remote at all', async () => {
    const {dir, ws} = await pushedHistory({imageSize: 96, noise: 1})
    await removeRemote(ws.repo, 'origin')
    const packDir = path.join(dir, '.tilesync', 'objects', 'pack')
    const idx = fs.readdirSync(packDir).filter((f) => f.endsWith('.idx'))
    expect(idx.length).to.be.greaterThan(0)
    for (const f of idx) fs.rmSync(path.join(packDir, f))
    // An index-less pack younger than a few minutes may be a write still going on: these are old.
    const old = new Date(Date.now() - 3_600_000)
    for (const f of fs.readdirSync(packDir)) fs.utimesSync(path.join(packDir, f), old, old)
    const broken = await fsckLocal(await Workspace.open(dir))
    expect(broken.ok).to.equal(false)
    const fixed = await fsckLocal(await Workspace.open(dir), {repair: true})
    expect(fixed.ok, JSON.stringify(fixed.problems.slice(0, 3))).to.equal(true)
    expect(fs.readdirSync(packDir).filter((f) => f.endsWith('.idx')).sort()).to.deep.equal(idx.sort())
  })

  it('when no remote has what is missing, says so instead of telling you to run --repair again', async () => {
    const {dir, ws, commits} = await pushedHistory()
    await removeRemote(ws.repo, 'origin')
    await addRemote(ws.repo, 'empty', path.join(tmpDir('fsck-empty'), 'r'))
    fs.rmSync(loose(dir, commits[1]))
    const r = cli(dir, ['fsck', '--repair'])
    expect(r.code).to.equal(1)
    expect(r.stdout).to.contain('no configured remote (empty) has it')
    expect(r.stdout).to.not.contain('run `tilesync fsck --repair` to download it again')
  })
})
