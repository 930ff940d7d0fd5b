import type {RemoteConfig} from '../repo/config.js'
import type {Backend} from './backend.js'
import {DirectoryBackend} from './directory-backend.js'
import {ObjectStoreTransport} from './object-store/object-store-transport.js'
import type {OpenContext, RemoteLocation} from './remote-kind.js'
import type {Transport} from './transport.js'

/** A directory path or file:// URL: a local folder, a shared drive, a NAS mount. */
export async function openBackend(loc: RemoteLocation): Promise<Backend> {
  if (loc.form !== 'path') throw new Error(`not a directory remote: ${loc.scheme}`)
  return new DirectoryBackend(loc.path)
}

export async function openTransport(loc: RemoteLocation, config: RemoteConfig, context: OpenContext): Promise<Transport> {
  return new ObjectStoreTransport(await openBackend(loc), 'directory', config.url, context.name, context.cwd)
}
