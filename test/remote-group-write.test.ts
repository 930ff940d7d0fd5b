import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {Workspace} from '../src/workspace/workspace.js'
import {makeProject, tmpDir} from './support/fixtures.js'
import {author} from './support/shapes.js'

function walk(dir: string): Array<{file: string; mode: number; isDir: boolean}> {
  const out: Array<{file: string; mode: number; isDir: boolean}> = []
  for (const e of fs.readdirSync(dir, {withFileTypes: true})) {
    const file = path.join(dir, e.name)
    out.push({file, mode: fs.statSync(file).mode & 0o7777, isDir: e.isDirectory()})
    if (e.isDirectory()) out.push(...walk(file))
  }
  return out
}

async function pushWithUmask(remote: string, umask: number): Promise<void> {
  const {dir} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'one', author})
  await addRemote(ws.repo, 'origin', remote)
  const old = process.umask(umask)
  try {
    await push(ws, {})
  } finally {
    process.umask(old)
  }
}

describe('directory remote shared by a group', () => {
  it('what a push creates keeps the group write (and setgid) of a group-writable remote, whatever the pusher\'s umask', async () => {
    const remote = path.join(tmpDir('group-remote'), 'shared')
    fs.mkdirSync(remote)
    fs.chmodSync(remote, 0o2775)
    await pushWithUmask(remote, 0o022)
    const entries = walk(remote)
    expect(entries.filter((e) => e.isDir).length).to.be.greaterThan(3)
    for (const e of entries) {
      if (e.isDir) expect(e.mode & 0o2070, `${e.file} ${e.mode.toString(8)}`).to.equal(0o2070)
      else expect(e.mode & 0o060, `${e.file} ${e.mode.toString(8)}`).to.equal(0o060)
    }
  })

  it('a remote that is not group-writable is left as the umask makes it', async () => {
    const remote = path.join(tmpDir('private-remote'), 'mine')
    fs.mkdirSync(remote)
    fs.chmodSync(remote, 0o755)
    await pushWithUmask(remote, 0o022)
    for (const e of walk(remote)) expect(e.mode & 0o020, e.file).to.equal(0)
  })
})
