import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

/**
 * Exclusive lock files holding the owner's pid. A lock appears whole or not at all (its
 * content is written to a temp file first, then hard-linked into place, which fails if the
 * lock exists), and a lock whose process no longer exists is taken over, so a crash never
 * blocks the repository.
 */
export async function acquireLockFile(file: string, options: {waitMs: number; tmpDir: string; content?: string; onTimeout: (holder: string) => Error}): Promise<() => Promise<void>> {
  const deadline = Date.now() + options.waitMs
  // Temp files go to tmpDir (same filesystem, cleaned by gc), never next to the lock.
  await fs.mkdir(options.tmpDir, {recursive: true})
  const tmp = path.join(options.tmpDir, `lock.${process.pid}.${randomBytes(4).toString('hex')}.new`)
  await fs.writeFile(tmp, options.content ?? `${process.pid}\n`)
  try {
    for (;;) {
      try {
        await fs.link(tmp, file)
        return () => fs.rm(file, {force: true})
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
        if (await takeOverIfStale(file, options.tmpDir)) continue
        if (Date.now() > deadline) throw options.onTimeout(await fs.readFile(file, 'utf8').catch(() => ''))
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 30))
      }
    }
  } finally {
    await fs.rm(tmp, {force: true})
  }
}

/** Stale: the pid it names is gone (same machine), or it names none and is old. */
async function isStaleContent(file: string, text: string): Promise<boolean> {
  const pid = Number.parseInt(text, 10)
  if (!Number.isFinite(pid) || pid <= 0) {
    const st = await fs.stat(file).catch(() => null)
    return st !== null && Date.now() - st.mtimeMs > 30_000
  }
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

export async function isStaleLock(file: string): Promise<boolean> {
  const text = await fs.readFile(file, 'utf8').catch(() => null)
  return text !== null && isStaleContent(file, text)
}

/**
 * Removes a stale lock so that two processes taking it over at once cannot both win. Takeovers
 * are serialised by a second, short-lived lock (`<lock>.takeover`): its holder re-reads the lock
 * and removes it only if it is still the stale one it judged. Nobody else can replace a lock
 * that exists, so between that read and the removal it cannot change. A takeover lock left by a
 * crash is itself removed after a few seconds (it is held for milliseconds).
 * Returns true when the caller should try to take the lock again.
 */
async function takeOverIfStale(file: string, tmpDir: string): Promise<boolean> {
  const judged = await fs.readFile(file, 'utf8').catch(() => null)
  if (judged === null) return true
  if (!(await isStaleContent(file, judged))) return false
  const guard = `${file}.takeover`
  const mine = path.join(tmpDir, `takeover.${process.pid}.${randomBytes(4).toString('hex')}`)
  await fs.writeFile(mine, `${process.pid}\n`)
  try {
    await fs.link(mine, guard)
  } catch {
    const st = await fs.stat(guard).catch(() => null)
    if (st && Date.now() - st.mtimeMs > 5_000) await fs.rm(guard, {force: true})
    await fs.rm(mine, {force: true})
    return true
  }
  try {
    const current = await fs.readFile(file, 'utf8').catch(() => null)
    if (current === judged) await fs.rm(file, {force: true})
  } finally {
    await fs.rm(guard, {force: true})
    await fs.rm(mine, {force: true})
  }
  return true
}
