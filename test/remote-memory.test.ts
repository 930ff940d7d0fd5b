import {hashBytes} from '../src/core/hash.js'
import {MemoryBackend} from '../src/remote/memory-backend.js'
import {runBackendConformance} from './support/backend-conformance.js'
import {memoryBackends, registerMemoryRemotes} from './support/memory-remote.js'
import {idsStoredAt, tamperStored, TREE_PACK_KEY} from './support/packed-remote.js'
import {runTransportConformance} from './support/transport-conformance.js'

registerMemoryRemotes()

runBackendConformance('memory', async () => ({backend: new MemoryBackend(), cleanup: async () => {}}))

let counter = 0

runTransportConformance('memory', () => ({
  corruptCodes: ['OBJECT_CORRUPT'],
  async newRemote() {
    const bucket = `conformance-${++counter}`
    const backend = new MemoryBackend(`memory://${bucket}`)
    memoryBackends.set(bucket, backend)
    let mark = 0
    return {
      url: `memory://${bucket}`,
      written: async () => idsStoredAt(backend, backend.writes.slice(mark)),
      resetWritten: async () => {
        mark = backend.writes.length
      },
      isUploadOf: (entry, blob) => entry === hashBytes(blob),
      interrupt: async () => {
        // The images' pack lands; the trees' pack fails while others are still on their way (30 ms each).
        const put = backend.put.bind(backend)
        backend.put = async (k, bytes) => {
          if (TREE_PACK_KEY.test(k)) throw new Error('connection reset by peer (injected)')
          await new Promise((resolve) => setTimeout(resolve, 30))
          return put(k, bytes)
        }
        return async () => {
          backend.put = put
        }
      },
      tamper: (blob, how) => tamperStored(backend, blob, how),
    }
  },
}))
