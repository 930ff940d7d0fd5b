import {expect} from 'chai'
import {spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {acquireLockFile} from '../src/repo/lock-file.js'
import {tmpDir} from './support/fixtures.js'

const timeout = (): Error => new Error('timed out')

describe('lock files', () => {
  it('a lock left by a killed process is taken over; a live holder is waited for', async () => {
    const dir = tmpDir()
    const lock = path.join(dir, 'lock')
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'])
    fs.writeFileSync(lock, `${child.pid}\n`)
    let err: unknown
    await acquireLockFile(lock, {waitMs: 200, tmpDir: path.join(dir, 'tmp'), onTimeout: timeout}).catch((e) => (err = e))
    expect((err as Error).message).to.equal('timed out')
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    const release = await acquireLockFile(lock, {waitMs: 2000, tmpDir: path.join(dir, 'tmp'), onTimeout: timeout})
    expect(fs.readFileSync(lock, 'utf8')).to.equal(`${process.pid}\n`)
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['lock', 'tmp'])
    await release()
    expect(fs.existsSync(lock)).to.equal(false)
  })

  it('of many takers of one stale lock, exactly one holds it at a time', async () => {
    const dir = tmpDir()
    const lock = path.join(dir, 'lock')
    for (let round = 0; round < 20; round++) {
      fs.writeFileSync(lock, '999999999\n')
      let holders = 0
      let maxHolders = 0
      await Promise.all(Array.from({length: 8}, async () => {
        const release = await acquireLockFile(lock, {waitMs: 10_000, tmpDir: path.join(dir, 'tmp'), onTimeout: timeout})
        holders++
        maxHolders = Math.max(maxHolders, holders)
        await new Promise((r) => setTimeout(r, 2))
        holders--
        await release()
      }))
      expect(maxHolders, `round ${round}`).to.equal(1)
    }
    // Nothing but the (empty) temp directory is left: no stray files next to the lock.
    expect(fs.readdirSync(dir)).to.deep.equal(['tmp'])
    expect(fs.readdirSync(path.join(dir, 'tmp'))).to.deep.equal([])
  })
})
