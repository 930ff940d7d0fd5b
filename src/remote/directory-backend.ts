import {createHash, randomBytes} from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import {DurabilityBarrier} from '../store/durability.js'
import type {Backend, ListedKey, Versioned} from './backend.js'

/**
 * A remote that is a plain directory: a local folder, a shared drive, a NAS mount. Writes
 * go through a temp file and a rename so readers never see half an object; compare-and-swap
 * takes an exclusive lock file next to the key, and first makes every earlier write durable.
 */
export class DirectoryBackend implements Backend {
  private readonly barrier: DurabilityBarrier

  constructor(readonly root: string) {
    this.barrier = new DurabilityBarrier(root, process.env.TILESYNC_FSYNC !== '0')
  }

  flush(): Promise<void> {
    return this.barrier.flush()
  }

  get location(): string {
    return this.root
  }

  private file(key: string): string {
    if (key.split('/').some((p) => p === '..' || p === '') || path.isAbsolute(key)) {
      throw new TilesyncError('HOSTILE_PATH', `refusing remote key "${key}"`, {hint: 'the remote holds an unsafe name; check it with `tilesync fsck --remote`'})
    }
    return path.join(this.root, ...key.split('/'))
  }

  localFile(key: string): string {
    return this.file(key)
  }

  private shared: Promise<{dir: number; file: number} | null> | undefined

  /**
   * A remote shared by a team is a directory its group can write (often with the setgid bit, so
   * new entries belong to that group). What one member creates there gets the directory's
   * group bits, whatever that member's umask, so the others can add objects to the
   * directories it made and replace the refs it wrote. Null when the remote's directory (or,
   * before it exists, its nearest parent) is not group-writable: then nothing is changed.
   */
  private sharedBits(): Promise<{dir: number; file: number} | null> {
    this.shared ??= (async () => {
      for (let d = path.resolve(this.root); ; d = path.dirname(d)) {
        const st = await fs.stat(d).catch(() => null)
        if (st) return (st.mode & 0o020) ? {dir: (st.mode & 0o070) | (st.mode & 0o2000), file: st.mode & 0o060} : null
        if (path.dirname(d) === d) return null
      }
    })()
    return this.shared
  }

  /** mkdir -p, then the group bits of a shared remote on each directory it created. */
  private async mkdirShared(dir: string): Promise<void> {
    const made = await fs.mkdir(dir, {recursive: true})
    if (!made) return
    const shared = await this.sharedBits()
    if (!shared) return
    const first = path.resolve(made)
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      await fs.chmod(d, ((await fs.stat(d)).mode & 0o7777) | shared.dir)
      if (d === first || path.dirname(d) === d) break
    }
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await fs.readFile(this.file(key))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw error
    }
  }

  async getRange(key: string, start: number, length: number): Promise<Buffer | null> {
    let handle: fs.FileHandle
    try {
      handle = await fs.open(this.file(key), 'r')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw error
    }
    try {
      const bytes = Buffer.allocUnsafe(length)
      let done = 0
      while (done < length) {
        const {bytesRead} = await handle.read(bytes, done, length - done, start + done)
        if (bytesRead === 0) break
        done += bytesRead
      }
      return done === length ? bytes : bytes.subarray(0, done)
    } finally {
      await handle.close()
    }
  }

  async getVersioned(key: string): Promise<Versioned | null> {
    const bytes = await this.get(key)
    return bytes === null ? null : {bytes, etag: etagOf(bytes)}
  }

  async put(key: string, bytes: Buffer): Promise<void> {
    const target = this.file(key)
    await this.mkdirShared(path.dirname(target))
    const tmpDir = path.join(this.root, 'tmp')
    await this.mkdirShared(tmpDir)
    const tmp = path.join(tmpDir, `${randomBytes(8).toString('hex')}.tmp`)
    try {
      await fs.writeFile(tmp, bytes)
      const shared = await this.sharedBits()
      if (shared) await fs.chmod(tmp, ((await fs.stat(tmp)).mode & 0o7777) | shared.file)
      await fs.rename(tmp, target)
      this.barrier.written(target)
    } catch (error) {
      await fs.rm(tmp, {force: true})
      throw error
    }
  }

  async putIfMatch(key: string, bytes: Buffer, expected: string | null): Promise<boolean> {
    const target = this.file(key)
    await this.mkdirShared(path.dirname(target))
    const lock = `${target}.lock`
    const release = await acquire(lock)
    try {
      const current = await this.getVersioned(key)
      if ((current?.etag ?? null) !== expected) return false
      // Everything pushed before this ref must be on disk before the ref that names it.
      await this.flush()
      await this.put(key, bytes)
      await this.flush()
      return true
    } finally {
      await release()
    }
  }

  async deleteIfMatch(key: string, expected: string): Promise<boolean> {
    const release = await acquire(`${this.file(key)}.lock`)
    try {
      if ((await this.getVersioned(key))?.etag !== expected) return false
      await this.delete(key)
      await this.flush()
      return true
    } finally {
      await release()
    }
  }

  async *list(prefix: string): AsyncIterable<ListedKey> {
    const start = prefix.replace(/\/$/, '')
    const walk = async function* (dir: string, rel: string): AsyncGenerator<ListedKey> {
      let entries
      try {
        entries = await fs.readdir(dir, {withFileTypes: true})
      } catch {
        return
      }
      for (const e of entries) {
        const childRel = rel ? `${rel}/${e.name}` : e.name
        if (e.isDirectory()) yield* walk(path.join(dir, e.name), childRel)
        else if (e.isFile() && !e.name.endsWith('.lock')) {
          const st = await fs.stat(path.join(dir, e.name))
          yield {key: childRel, size: st.size, lastModified: st.mtimeMs}
        }
      }
    }
    yield* walk(start ? this.file(start) : this.root, start)
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.file(key), {force: true})
  }

  async removeEmptyDirectories(prefixes: string[]): Promise<void> {
    // rmdir only removes an empty directory: anything someone else put there keeps its directory.
    const prune = async (dir: string): Promise<void> => {
      const entries = await fs.readdir(dir, {withFileTypes: true}).catch(() => null)
      if (!entries) return
      for (const e of entries) if (e.isDirectory()) await prune(path.join(dir, e.name))
      await fs.rmdir(dir).catch(() => {})
    }
    for (const p of prefixes) {
      const top = p.replace(/\/$/, '').split('/')[0]
      if (top) await prune(this.file(top))
    }
    await fs.rmdir(this.root).catch(() => {})
  }
}

function etagOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Lock files older than this are from a crashed writer (a CAS holds one for milliseconds). */
const STALE_LOCK_MS = 30_000

/**
 * The lock holds "PID HOSTNAME". A directory remote may be shared by several machines, so a
 * holder's pid is only checked on its own machine; there a lock whose process died (killed
 * in the middle of a push) is taken over at once, elsewhere after STALE_LOCK_MS.
 */
async function acquire(lock: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + 15_000
  const me = `${process.pid} ${os.hostname()}\n`
  for (;;) {
    try {
      const h = await fs.open(lock, 'wx')
      try {
        await h.writeFile(me)
      } finally {
        await h.close()
      }
      return () => fs.rm(lock, {force: true})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      if (await takeOverIfStale(lock)) continue
      if (Date.now() > deadline) {
        throw new TilesyncError('REPO_LOCKED', `the remote ref ${path.basename(lock, '.lock')} is locked by another push`, {hint: `try again; if no push is running, delete ${lock}`})
      }
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 30))
    }
  }
}

function holderIsGone(text: string): boolean {
  const [pid, host] = text.trim().split(/\s+/)
  const n = Number.parseInt(pid ?? '', 10)
  if (host !== os.hostname() || !Number.isFinite(n) || n <= 0) return false
  try {
    process.kill(n, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/**
 * Removes a stale lock so that two processes taking it over at once cannot both win: it is
 * renamed away (only one rename of a given file succeeds), and if what moved is not the lock
 * that was judged stale (a new owner slipped in), it is put back.
 */
async function takeOverIfStale(lock: string): Promise<boolean> {
  const st = await fs.stat(lock).catch(() => null)
  if (!st) return true
  const judged = await fs.readFile(lock, 'utf8').catch(() => null)
  if (judged === null) return true
  if (!(Date.now() - st.mtimeMs > STALE_LOCK_MS || holderIsGone(judged))) return false
  // Still named *.lock, so listings never mistake it for a ref.
  const tomb = `${lock}.${process.pid}.${randomBytes(4).toString('hex')}.lock`
  try {
    await fs.rename(lock, tomb)
  } catch {
    return true
  }
  const moved = await fs.readFile(tomb, 'utf8').catch(() => null)
  if (moved !== judged) await fs.link(tomb, lock).catch(() => {})
  await fs.rm(tomb, {force: true})
  return true
}
