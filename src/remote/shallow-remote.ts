import {formatShallow, parseShallow} from '../repo/shallow.js'
import type {RemoteStore} from './remote-store.js'

/** The remote key listing shallow roots: commits whose parents a prune removed. */
export const SHALLOW_KEY = 'shallow'

/** The shallow roots of a remote (empty when it was never pruned). */
export async function readRemoteShallow(remote: RemoteStore): Promise<Set<string>> {
  const bytes = await remote.backend.get(SHALLOW_KEY)
  return bytes ? parseShallow(bytes.toString('utf8')) : new Set()
}

/**
 * Changes the remote's shallow list with compare-and-swap, retrying when another prune or
 * push changed it meanwhile: `update` gets the current list and returns the new one.
 */
export async function updateRemoteShallow(remote: RemoteStore, update: (current: Set<string>) => Set<string>): Promise<Set<string>> {
  for (let attempt = 0; ; attempt++) {
    const v = await remote.backend.getVersioned(SHALLOW_KEY)
    const current = v ? parseShallow(v.bytes.toString('utf8')) : new Set<string>()
    const next = update(current)
    if (next.size === current.size && [...next].every((id) => current.has(id))) return current
    if (await remote.backend.putIfMatch(SHALLOW_KEY, formatShallow(next), v?.etag ?? null)) return next
    if (attempt >= 20) throw new Error(`the shallow list of remote "${remote.name}" kept changing; try again`)
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80))
  }
}
