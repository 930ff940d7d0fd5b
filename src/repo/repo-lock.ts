import * as fs from 'node:fs/promises'

import {TilesyncError} from '../core/errors.js'
import {isStaleLock} from './refs.js'

/**
 * One writer at a time per repository (commit, checkout, merge, pull, gc). The lock file
 * holds the owner's pid; a lock whose process is gone (killed, crashed) is taken over, so a
 * crash never leaves the repository blocked.
 */
export async function acquireRepoLock(lockFile: string, what: string, waitMs = 5_000): Promise<() => Promise<void>> {
  const deadline = Date.now() + waitMs
  for (;;) {
    try {
      const h = await fs.open(lockFile, 'wx')
      await h.writeFile(`${process.pid}\n${what}\n`)
      await h.close()
      return () => fs.rm(lockFile, {force: true})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      if (await isStaleLock(lockFile)) {
        await fs.rm(lockFile, {force: true})
        continue
      }
      if (Date.now() > deadline) {
        const holder = await fs.readFile(lockFile, 'utf8').catch(() => '')
        const [pid, op] = holder.split('\n')
        throw new TilesyncError('REPO_LOCKED', `another tilesync command (${op || 'unknown'}, pid ${pid || '?'}) is using this repository`, {
          hint: `wait for it to finish; if it is not running, delete ${lockFile}`,
        })
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}
