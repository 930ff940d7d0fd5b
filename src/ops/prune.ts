import {TilesyncError} from '../core/errors.js'
import type {PruneResult} from '../remote/capabilities.js'
import type {Repository} from '../repo/repository.js'
import {DEFAULT_GRACE_MS} from './gc.js'
import {short} from './object-walk.js'
import {openRemote} from './remotes.js'

export type {PruneResult} from '../remote/capabilities.js'

/**
 * Keeps the last `keepLast` commits of every branch of a remote (following first parents)
 * and removes every object those commits do not reach; the oldest kept commits become
 * shallow roots. Objects younger than the grace period stay, so a push running at the same
 * time keeps everything it uploads. A remote that cannot prune says so.
 */
export async function pruneRemote(repo: Repository, name: string, options: {keepLast: number; dryRun?: boolean; graceMs?: number}): Promise<PruneResult> {
  const keepLast = options.keepLast
  if (!Number.isInteger(keepLast) || keepLast < 1) {
    throw new TilesyncError('BAD_ARGUMENT', `--keep-last must be a whole number of at least 1, got ${keepLast}`, {hint: 'e.g. --keep-last 10'})
  }
  const remote = await openRemote(repo, name)
  try {
    if (!remote.prune) {
      throw new TilesyncError('REMOTE_UNSUPPORTED', `remote "${name}" (${remote.location}) cannot be pruned: ${remote.kind} remotes keep their own history`, {hint: 'only remotes that store tilesync objects can be pruned'})
    }
    return await remote.prune({keepLast, dryRun: options.dryRun, graceMs: options.graceMs ?? DEFAULT_GRACE_MS})
  } finally {
    await remote.close()
  }
}

export function describePrune(r: PruneResult): string[] {
  const lines = r.branches.map((b) => `  ${b.branch}: kept ${b.kept} commit(s), ${short(b.tip)} back to ${short(b.oldestKept)}`)
  if (r.shallow.length) lines.push(`  history now starts at ${r.shallow.map(short).join(', ')} (recorded in the remote's shallow list)`)
  return lines
}
