import {expect} from 'chai'

import {byteBudget} from '../src/util/byte-budget.js'

/** A job that runs until released, recording how many bytes and jobs were running with it. */
function harness(maxBytes: number, maxJobs: number) {
  const budget = byteBudget(maxBytes, maxJobs)
  let bytes = 0
  let jobs = 0
  const peak = {bytes: 0, jobs: 0}
  const order: string[] = []
  const releases = new Map<string, () => void>()
  const run = (name: string, size: number): Promise<string> => budget(size, async () => {
    order.push(name)
    bytes += size
    jobs++
    peak.bytes = Math.max(peak.bytes, bytes)
    peak.jobs = Math.max(peak.jobs, jobs)
    await new Promise<void>((resolve) => releases.set(name, resolve))
    bytes -= size
    jobs--
    return name
  })
  const release = async (name: string): Promise<void> => {
    releases.get(name)!()
    // Let the released job finish and the next ones start.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
  }
  return {run, release, order, peak}
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
}

describe('byteBudget', () => {
  it('keeps the bytes of running jobs within the budget, first come first served', async () => {
    const h = harness(100, 10)
    const all = [h.run('a', 60), h.run('b', 30), h.run('c', 50), h.run('d', 5)]
    await settle()
    // c does not fit beside a and b, and d, though small, does not overtake c.
    expect(h.order).to.deep.equal(['a', 'b'])
    await h.release('a')
    expect(h.order).to.deep.equal(['a', 'b', 'c', 'd'])
    for (const n of ['b', 'c', 'd']) await h.release(n)
    expect(await Promise.all(all)).to.deep.equal(['a', 'b', 'c', 'd'])
    expect(h.peak.bytes).to.be.at.most(100)
  })

  it('caps the number of running jobs', async () => {
    const h = harness(1_000_000, 3)
    const all = ['a', 'b', 'c', 'd', 'e'].map((n) => h.run(n, 1))
    await settle()
    expect(h.order).to.have.length(3)
    for (const n of ['a', 'b', 'c', 'd', 'e']) await h.release(n)
    await Promise.all(all)
    expect(h.peak.jobs).to.equal(3)
  })

  it('runs a job larger than the whole budget, alone', async () => {
    const h = harness(100, 10)
    const all = [h.run('small', 10), h.run('huge', 500), h.run('after', 10)]
    await settle()
    expect(h.order).to.deep.equal(['small'])
    await h.release('small')
    expect(h.order).to.deep.equal(['small', 'huge'])
    await h.release('huge')
    expect(h.order).to.deep.equal(['small', 'huge', 'after'])
    await h.release('after')
    await Promise.all(all)
  })

  it('a failing job gives its place back', async () => {
    const budget = byteBudget(10, 1)
    const failed = budget(10, async () => {
      throw new Error('boom')
    })
    await failed.then(() => expect.fail('should have thrown'), (e: Error) => expect(e.message).to.equal('boom'))
    expect(await budget(10, async () => 'next')).to.equal('next')
  })
})
