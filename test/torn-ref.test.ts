import {expect} from 'chai'

import {MemoryBackend} from '../src/remote/memory-backend.js'
import type {Versioned} from '../src/remote/backend.js'
import {RemoteStore} from '../src/remote/object-store/remote-store.js'

const ID = 'a'.repeat(64)

/** A store that writes a ref in place (as s3rver does): the first reads of it catch it half written. */
class TornOnce extends MemoryBackend {
  torn = 0
  constructor(private readonly tornReads: number) {
    super('memory://torn')
  }

  override async getVersioned(key: string): Promise<Versioned | null> {
    const v = await super.getVersioned(key)
    if (v && key.startsWith('refs/') && this.torn < this.tornReads) {
      this.torn++
      return {...v, bytes: v.bytes.subarray(0, 7)}
    }
    return v
  }
}

describe('a remote ref read half written', () => {
  it('is read again, not reported damaged, when the next read is whole', async () => {
    const backend = new TornOnce(2)
    await backend.put('refs/heads/main', Buffer.from(`${ID}\n`))
    const ref = await new RemoteStore(backend, 'origin').readBranch('main')
    expect(ref?.id).to.equal(ID)
    expect(backend.torn).to.equal(2)
  })

  it('a ref that stays unreadable is still damaged, with one clear line', async () => {
    const backend = new TornOnce(Number.POSITIVE_INFINITY)
    await backend.put('refs/heads/main', Buffer.from(`${ID}\n`))
    try {
      await new RemoteStore(backend, 'origin').readBranch('main')
      expect.fail('a damaged ref was read')
    } catch (error) {
      expect((error as {code?: string}).code).to.equal('REMOTE_PROTOCOL')
      expect((error as Error).message).to.equal('remote "origin" has a damaged ref main')
    }
  })
})
