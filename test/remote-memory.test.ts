import {hashBytes} from '../src/core/hash.js'
import {MemoryBackend} from '../src/remote/memory-backend.js'
import {remoteKeys} from '../src/remote/object-store/remote-store.js'
import {runBackendConformance} from './support/backend-conformance.js'
import {memoryBackends, registerMemoryRemotes} from './support/memory-remote.js'
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
      written: async () => backend.writes.slice(mark).filter((k) => k.startsWith(remoteKeys.objectsPrefix)),
      resetWritten: async () => {
        mark = backend.writes.length
      },
      isUploadOf: (entry, blob) => entry === remoteKeys.object(hashBytes(blob)),
      interrupt: async (blobs) => {
        // One upload fails at once while the others are still on their way (30 ms each).
        const key = remoteKeys.object(hashBytes(blobs[0]))
        const put = backend.put.bind(backend)
        backend.put = async (k, bytes) => {
          if (k === key) throw new Error('connection reset by peer (injected)')
          await new Promise((resolve) => setTimeout(resolve, 30))
          return put(k, bytes)
        }
        return async () => {
          backend.put = put
        }
      },
      tamper: async (blob, how) => {
        const e = backend.keys.get(remoteKeys.object(hashBytes(blob)))!
        e.bytes = how === 'append' ? Buffer.concat([e.bytes, Buffer.from('tampered')]) : e.bytes.subarray(0, e.bytes.length >> 1)
      },
    }
  },
}))
