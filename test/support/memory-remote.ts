import type {RemoteConfig} from '../../src/repo/config.js'
import type {Backend} from '../../src/remote/backend.js'
import {MemoryBackend} from '../../src/remote/memory-backend.js'
import {ObjectStoreTransport} from '../../src/remote/object-store/object-store-transport.js'
import type {OpenContext, RemoteLocation} from '../../src/remote/remote-kind.js'
import {registerRemoteKind} from '../../src/remote/registry.js'
import type {Transport} from '../../src/remote/transport.js'

/** The in-memory remotes of this process, by the bucket of their memory://BUCKET URL. */
export const memoryBackends = new Map<string, MemoryBackend>()

async function openBackend(loc: RemoteLocation): Promise<Backend> {
  if (loc.form !== 'bucket') throw new Error('memory://BUCKET')
  let b = memoryBackends.get(loc.bucket)
  if (!b) memoryBackends.set(loc.bucket, (b = new MemoryBackend(`memory://${loc.bucket}`)))
  return b
}

async function openTransport(loc: RemoteLocation, config: RemoteConfig, context: OpenContext): Promise<Transport> {
  return new ObjectStoreTransport(await openBackend(loc), 'memory', config.url, context.name, context.cwd)
}

/**
 * Registers memory://BUCKET as a kind of remote, for tests: an object-store transport over a
 * MemoryBackend, so push, fetch, pull and clone run through the same porcelain as for any
 * other kind. Registering it is all a new kind of remote needs besides its module.
 */
export function registerMemoryRemotes(): void {
  registerRemoteKind('memory', {form: 'bucket', storesObjects: true, load: async () => ({openBackend, openTransport})})
}
