import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs/promises'

/**
 * Exclusive lock files (O_EXCL create) holding the owner's pid. A lock whose process no
 * longer exists (killed, crashed) is taken over, so a crash never blocks the repository.
 */
export async function acquireLockFile(file: string, options: {waitMs: number; content?: string; onTimeout: (holder: string) => Error}): Promise<() => Promise<void>> {
  const deadline = Date.now() + options.waitMs
  for (;;) {
    try {
      const h = await fs.open(file, 'wx')
      await h.writeFile(options.content ?? `${process.pid}\n`)
      await h.close()
      return () => fs.rm(file, {force: true})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      if (await takeOverIfStale(file)) continue
      if (Date.now() > deadline) throw options.onTimeout(await fs.readFile(file, 'utf8').catch(() => ''))
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 30))
    }
  }
}

function holderIsGone(text: string): boolean {
  const pid = Number.parseInt(text, 10)
  if (!Number.isFinite(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/** A lock is stale when the process that wrote it no longer exists (same machine). */
export async function isStaleLock(file: string): Promise<boolean> {
  const text = await fs.readFile(file, 'utf8').catch(() => null)
  if (text === null) return false
  if (text.trim() === '') {
    // Created but not yet written, or written by a process that died at once: stale after a while.
    const st = await fs.stat(file).catch(() => null)
    return st !== null && Date.now() - st.mtimeMs > 5_000
  }
  return holderIsGone(text)
}

/**
 * Removes a stale lock so that two processes taking it over at once cannot both win: the
 * lock is renamed away (only one rename of a given file succeeds), and if what was moved is
 * not the stale lock that was judged (a new owner slipped in), it is put back.
 */
async function takeOverIfStale(file: string): Promise<boolean> {
  if (!(await isStaleLock(file))) return false
  const judged = await fs.readFile(file, 'utf8').catch(() => null)
  if (judged === null) return true
  const tomb = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.stale`
  try {
    await fs.rename(file, tomb)
  } catch {
    return true
  }
  const moved = await fs.readFile(tomb, 'utf8').catch(() => null)
  if (moved !== judged) await fs.link(tomb, file).catch(() => {})
  await fs.rm(tomb, {force: true})
  return true
}
