import {parseShallow} from '../../repo/shallow.js'
import type {PushJournal} from './push-journal.js'
import type {RemoteStore} from './remote-store.js'

/**
 * The remote key listing shallow roots: commits whose parents a prune removed, one id per
 * line, and a line `# pruned-before MS`: the latest prune removed only objects last modified
 * before that time.
 */
export const SHALLOW_KEY = 'shallow'

export interface RemoteShallow {
  roots: Set<string>
  /** Objects older than this may have been removed by a prune (null: never pruned). */
  prunedBefore: number | null
}

function parse(text: string): RemoteShallow {
  const m = /^# pruned-before (\d+)$/m.exec(text)
  return {roots: parseShallow(text), prunedBefore: m ? Number(m[1]) : null}
}

function format(s: RemoteShallow): Buffer {
  const lines = [...s.roots].sort()
  if (s.prunedBefore !== null) lines.unshift(`# pruned-before ${s.prunedBefore}`)
  return Buffer.from(lines.length ? lines.join('\n') + '\n' : '')
}

export async function readRemoteShallowInfo(remote: RemoteStore): Promise<RemoteShallow> {
  const bytes = await remote.backend.get(SHALLOW_KEY)
  return parse(bytes ? bytes.toString('utf8') : '')
}

/** The shallow roots of a remote (empty when it was never pruned). */
export async function readRemoteShallow(remote: RemoteStore): Promise<Set<string>> {
  return (await readRemoteShallowInfo(remote)).roots
}

/**
 * Changes the remote's shallow list with compare-and-swap, retrying when another prune or
 * push changed it meanwhile: `update` gets the current roots and returns the new ones.
 * `prunedBefore` (a prune's cutoff) only ever moves forward.
 */
export async function updateRemoteShallow(remote: RemoteStore, update: (current: Set<string>) => Set<string>, prunedBefore?: number): Promise<Set<string>> {
  for (let attempt = 0; ; attempt++) {
    const v = await remote.backend.getVersioned(SHALLOW_KEY)
    const current = parse(v ? v.bytes.toString('utf8') : '')
    const next: RemoteShallow = {
      roots: update(current.roots),
      prunedBefore: prunedBefore === undefined ? current.prunedBefore : Math.max(prunedBefore, current.prunedBefore ?? 0),
    }
    const same = next.prunedBefore === current.prunedBefore && next.roots.size === current.roots.size && [...next.roots].every((id) => current.roots.has(id))
    if (same) return current.roots
    if (await remote.backend.putIfMatch(SHALLOW_KEY, format(next), v?.etag ?? null)) return next.roots
    if (attempt >= 20) throw new Error(`the shallow list of remote "${remote.name}" kept changing; try again`)
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80))
  }
}

/**
 * An unfinished push's journal says which objects are already on the remote. If the remote
 * was pruned since the journal began, some may have been removed: then it is forgotten and
 * everything is sent again, so a branch never moves to a commit the remote lacks.
 */
export async function forgetIfPruned(journal: PushJournal, remote: RemoteStore): Promise<void> {
  if (journal.size === 0) return
  const {prunedBefore} = await readRemoteShallowInfo(remote)
  if (prunedBefore !== null && (journal.startedAt ?? 0) <= prunedBefore) await journal.clear()
}
