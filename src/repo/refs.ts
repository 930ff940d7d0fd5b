import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import {isObjectId} from '../core/hash.js'
import {writeFileAtomic} from '../util/write-file-atomic.js'
import type {RepoLayout} from './layout.js'
import {acquireLockFile} from './lock-file.js'

export interface ReflogEntry {
  old: string | null
  new: string | null
  time: number
  message: string
}

export type Head = {kind: 'branch'; ref: string; branch: string} | {kind: 'detached'; id: string}

const NAME_PATTERN = /^(?!.*\.\.)(?!.*\/\/)(?!\/)(?!.*\/$)(?!.*\.lock(\.|\/|$))[A-Za-z0-9._\-/]+$/

/** Branch, tag and remote names must be safe as path segments and unambiguous as revisions. */
export function assertValidRefName(name: string, what = 'name'): void {
  if (!NAME_PATTERN.test(name) || name.startsWith('-') || /^[0-9a-f]{4,64}$/.test(name) || name === 'HEAD' || name.includes('@{')) {
    throw new TilesyncError('BAD_NAME', `invalid ${what} "${name}"`, {
      hint: 'use letters, digits, ".", "_", "-" and "/"; not a hex id, not HEAD',
    })
  }
}

/**
 * Refs are small files holding a commit id, as in git. Every update goes through a lock
 * file and an expected-old-value check (compare-and-swap), then an atomic rename, and is
 * appended to the ref's reflog so any earlier state can be found again.
 */
export class Refs {
  /** `beforeUpdate` runs before any ref moves: the object store's durability barrier. */
  constructor(private readonly layout: RepoLayout, private readonly beforeUpdate: () => Promise<void> = async () => {}) {}

  async read(name: string): Promise<string | null> {
    let text: string
    try {
      text = (await fs.readFile(this.layout.ref(name), 'utf8')).trim()
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw error
    }
    if (!isObjectId(text)) {
      throw new TilesyncError('BAD_CONFIG', `ref ${name} is damaged (holds "${text.slice(0, 40)}")`, {
        hint: 'run `tilesync fsck`; `tilesync reflog` lists earlier values',
      })
    }
    return text
  }

  async readHead(): Promise<Head> {
    const text = (await fs.readFile(this.layout.head, 'utf8')).trim()
    if (text.startsWith('ref: ')) {
      const ref = text.slice(5)
      return {kind: 'branch', ref, branch: ref.replace(/^refs\/heads\//, '')}
    }
    if (isObjectId(text)) return {kind: 'detached', id: text}
    throw new TilesyncError('BAD_CONFIG', 'HEAD is damaged', {hint: 'run `tilesync fsck`'})
  }

  /** The commit HEAD points at, or null on a branch with no commits yet. */
  async headCommit(): Promise<string | null> {
    const head = await this.readHead()
    return head.kind === 'detached' ? head.id : this.read(head.ref)
  }

  async setHead(head: Head, message: string): Promise<void> {
    const old = await this.headCommit().catch(() => null)
    await this.beforeUpdate()
    const text = head.kind === 'branch' ? `ref: ${head.ref}\n` : `${head.id}\n`
    await writeFileAtomic(this.layout.tmp, this.layout.head, Buffer.from(text), true)
    const now = head.kind === 'branch' ? await this.read(head.ref) : head.id
    await this.appendReflog('HEAD', {old, new: now, time: Date.now(), message})
  }

  /**
   * Moves `name` to `id` if it still holds `expected` (undefined = don't check).
   * HEAD's reflog is written too when HEAD is on this branch.
   */
  async update(name: string, id: string | null, message: string, expected?: string | null): Promise<void> {
    const file = this.layout.ref(name)
    await fs.mkdir(path.dirname(file), {recursive: true})
    await this.beforeUpdate()
    const release = await this.lockRef(file)
    try {
      const current = await this.read(name)
      if (expected !== undefined && current !== expected) {
        throw new TilesyncError('REPO_LOCKED', `${name} moved while this command ran (now ${current?.slice(0, 10) ?? 'absent'})`, {
          hint: 'run the command again',
        })
      }
      if (id === null) await fs.rm(file, {force: true})
      else await writeFileAtomic(this.layout.tmp, file, Buffer.from(`${id}\n`), true)
      const entry = {old: current, new: id, time: Date.now(), message}
      await this.appendReflog(name, entry)
      const head = await this.readHead().catch(() => null)
      if (head?.kind === 'branch' && head.ref === name) await this.appendReflog('HEAD', entry)
    } finally {
      await release()
    }
  }

  /** Moves whatever HEAD points at (the branch, or HEAD itself when detached). */
  async updateHead(id: string, message: string, expected?: string | null): Promise<void> {
    const head = await this.readHead()
    if (head.kind === 'branch') return this.update(head.ref, id, message, expected)
    await this.setHead({kind: 'detached', id}, message)
  }

  async list(prefix: string): Promise<Array<{name: string; id: string}>> {
    const out: Array<{name: string; id: string}> = []
    const walk = async (rel: string): Promise<void> => {
      let entries
      try {
        entries = await fs.readdir(this.layout.ref(rel), {withFileTypes: true})
      } catch {
        return
      }
      for (const e of entries) {
        const child = `${rel}/${e.name}`
        if (e.isDirectory()) await walk(child)
        else if (!/\.lock(\.|$)/.test(e.name)) {
          const id = await this.read(child)
          if (id) out.push({name: child, id})
        }
      }
    }
    await walk(prefix.replace(/\/$/, ''))
    return out.sort((a, b) => a.name.localeCompare(b.name))
  }

  async appendReflog(name: string, entry: ReflogEntry): Promise<void> {
    const file = this.layout.reflog(name)
    await fs.mkdir(path.dirname(file), {recursive: true})
    // One short line per append: O_APPEND writes of this size land whole even under crashes.
    await fs.appendFile(file, JSON.stringify(entry) + '\n')
  }

  async readReflog(name: string): Promise<ReflogEntry[]> {
    let text: string
    try {
      text = await fs.readFile(this.layout.reflog(name), 'utf8')
    } catch {
      return []
    }
    const entries: ReflogEntry[] = []
    for (const line of text.split('\n')) {
      if (!line.trim()) continue
      try {
        entries.push(JSON.parse(line) as ReflogEntry)
      } catch {
        // A torn last line after a crash is skipped, never fatal.
      }
    }
    return entries
  }

  private lockRef(file: string): Promise<() => Promise<void>> {
    const lock = `${file}.lock`
    return acquireLockFile(lock, {
      waitMs: 10_000,
      tmpDir: this.layout.tmp,
      onTimeout: () => new TilesyncError('REPO_LOCKED', `${path.basename(file)} is being updated by another tilesync process`, {
        hint: `wait for it to finish; if none is running, delete ${lock}`,
      }),
    })
  }
}
