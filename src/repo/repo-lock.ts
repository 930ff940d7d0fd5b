import {TilesyncError} from '../core/errors.js'
import {acquireLockFile} from './lock-file.js'

/**
 * One writer at a time per repository (commit, checkout, merge, pull, gc). The lock file
 * holds the owner's pid and what it is doing; a lock whose process is gone is taken over.
 */
export function acquireRepoLock(lockFile: string, tmpDir: string, what: string, waitMs = 5_000): Promise<() => Promise<void>> {
  return acquireLockFile(lockFile, {
    waitMs,
    tmpDir,
    content: `${process.pid}\n${what}\n`,
    onTimeout: (holder) => {
      const [pid, op] = holder.split('\n')
      return new TilesyncError('REPO_LOCKED', `another tilesync command (${op || 'unknown'}, pid ${pid || '?'}) is using this repository`, {
        hint: `wait for it to finish; if it is not running, delete ${lockFile}`,
      })
    },
  })
}
