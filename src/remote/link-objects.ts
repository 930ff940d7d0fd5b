import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {hashBytes} from '../core/hash.js'
import type {HashingPool} from '../store/hashing-pool.js'
import type {LocalObjectStore} from '../store/local-object-store.js'
import type {RemoteStore} from './remote-store.js'

/**
 * Hard-links a blob from a remote that is a directory on this machine into the local store,
 * as git does for a local clone: no bytes are written. Both sides only ever replace an object
 * file whole (temp file, rename), never edit it in place, so sharing the file is safe. The
 * link is made under a temp name and its bytes checked against the id before it is renamed
 * into place (on a hashing worker when there is a pool). Returns the object's size, or null
 * when no link can be made (another filesystem, not a plain file, no permission): the caller
 * then copies the bytes.
 */
export async function linkObject(local: LocalObjectStore, remote: RemoteStore, id: string, pool?: HashingPool): Promise<number | null> {
  const source = remote.objectFile(id)
  if (!source) return null
  if (pool) {
    const r = await pool.link(source, id)
    if (r === null) return null
    if (r.id !== id) throw remote.corrupt(id, r.id, r.size)
    return r.size
  }
  const tmp = path.join(local.tmpDir, `${id.slice(0, 16)}.${process.pid}.${randomBytes(6).toString('hex')}.link`)
  try {
    await fs.link(source, tmp)
  } catch {
    return null
  }
  try {
    // link() does not follow a symlink: a remote that planted one gets it copied, not linked.
    if (!(await fs.lstat(tmp)).isFile()) return null
    const bytes = await fs.readFile(tmp)
    const actual = hashBytes(bytes)
    if (actual !== id) throw remote.corrupt(id, actual, bytes.length)
    await local.adopt(tmp, id)
    return bytes.length
  } finally {
    await fs.rm(tmp, {force: true})
  }
}
