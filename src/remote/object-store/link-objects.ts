import type {HashingPool} from '../../store/hashing-pool.js'
import type {RemoteStore} from './remote-store.js'

/**
 * Hard-links a blob from a remote that is a directory on this machine into the local store,
 * as git does for a local clone: no bytes are written. Both sides only ever replace an object
 * file whole (temp file, rename), never edit it in place, so sharing the file is safe. A
 * hashing worker makes the link under a temp name and checks its bytes against the id before
 * renaming it into place. Returns the object's size, or null when no link can be made
 * (another filesystem, not a plain file, no permission): the caller then copies the bytes.
 */
export async function linkObject(remote: RemoteStore, id: string, pool: HashingPool): Promise<number | null> {
  const source = remote.objectFile(id)
  if (!source) return null
  const r = await pool.link(source, id)
  if (r === null) return null
  if (r.id !== id) throw remote.corrupt(id, r.id, r.size)
  return r.size
}
