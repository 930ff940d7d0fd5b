import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import {chargeDiskWrite} from './fault.js'

/**
 * Writes `bytes` to `target` so that `target` is either absent or complete: temp file,
 * optional fsync, rename. A full disk surfaces as DISK_FULL with the temp file removed.
 */
export async function writeFileAtomic(tmpDir: string, target: string, bytes: Uint8Array, durable: boolean): Promise<void> {
  const tmp = path.join(tmpDir, `${path.basename(target).slice(0, 16)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  let handle: fs.FileHandle | undefined
  try {
    handle = await fs.open(tmp, 'wx')
    chargeDiskWrite(bytes.length)
    await handle.writeFile(bytes)
    if (durable) await handle.datasync()
    await handle.close()
    handle = undefined
    await fs.rename(tmp, target)
  } catch (error) {
    await handle?.close().catch(() => {})
    await fs.rm(tmp, {force: true}).catch(() => {})
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new TilesyncError('DISK_FULL', `no space left on the disk while writing ${path.basename(target)}`, {
        hint: 'free some disk space and run the command again; nothing was changed',
        cause: error,
      })
    }
    throw error
  }
}
