import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {flushWhileWriting} from '../src/util/flush-while-writing.js'
import {tmpDir} from './support/fixtures.js'

describe('flushWhileWriting', () => {
  it('flushes a file again and again while it grows, and stops when asked', async () => {
    const file = path.join(tmpDir('flush'), 'growing.db')
    fs.writeFileSync(file, '')
    const flusher = flushWhileWriting(file, 5)
    const fd = fs.openSync(file, 'a')
    for (let i = 0; i < 20; i++) {
      fs.writeSync(fd, Buffer.alloc(64 * 1024, i))
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    fs.closeSync(fd)
    const flushes = await flusher.stop()
    expect(flushes).to.be.at.least(2)
    // Stopped means stopped: nothing more runs against the file (it can go at once).
    fs.rmSync(file)
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(fs.existsSync(file)).to.equal(false)
  })

  it('a file that is not there is no error: there is nothing to flush', async () => {
    const flusher = flushWhileWriting(path.join(tmpDir('flush'), 'missing.db'), 5)
    expect(await flusher.stop()).to.equal(0)
  })

  it('stop() during a flush returns when that flush ends, without waiting out the pause', async () => {
    const file = path.join(tmpDir('flush'), 'slow.db')
    fs.writeFileSync(file, 'x')
    let release!: () => void
    let inFlight!: () => void
    const started = new Promise<void>((resolve) => { inFlight = resolve })
    const slowFlush = (): Promise<void> => {
      inFlight()
      return new Promise<void>((resolve) => { release = resolve })
    }
    // An hour's pause: if stop() left the loop waiting on it, the test would time out.
    const flusher = flushWhileWriting(file, 3_600_000, slowFlush)
    await started
    const stopped = flusher.stop()
    release()
    expect(await stopped).to.equal(1)
  })
})
