import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import type {Repository} from '../repo/repository.js'
import type {ObjectReader} from '../store/object-store.js'
import {md5Prefix} from './layout.js'

/**
 * Image file names carry the first 8 hex digits of the PNG's MD5, but tilesync addresses blobs
 * by BLAKE3. This cache (`.tilesync/cache/md5`, one "blake3 md5prefix" line per blob, append
 * only) remembers the MD5 of every blob already named once, so an export or push of a large
 * database reads only the images that are new since the last one. Blob ids are content
 * hashes, so an entry can never go stale; a torn or odd line is skipped.
 */
export class Md5Cache {
  private readonly known = new Map<string, string>()
  private pending: string[] = []

  private constructor(private readonly file: string | null) {}

  /** `writeBack: false`: what is learnt is kept in memory only (a dry run writes nothing). */
  static async open(repo: Repository, options: {writeBack?: boolean} = {}): Promise<Md5Cache> {
    const file = path.join(repo.layout.dir, 'cache', 'md5')
    const cache = new Md5Cache(options.writeBack === false ? null : file)
    const text = await fs.readFile(file, 'utf8').catch(() => '')
    for (const line of text.split('\n')) {
      const m = /^([0-9a-f]{64}) ([0-9a-f]{8})$/.exec(line)
      if (m) cache.known.set(m[1], m[2])
    }
    return cache
  }

  /** A cache that is not persisted (tests, throwaway repositories). */
  static memory(): Md5Cache {
    return new Md5Cache(null)
  }

  /** The MD5 prefix of blob `id`, reading (and verifying) it from `store` only when unknown. */
  async md5Of(id: string, store: ObjectReader): Promise<string> {
    const hit = this.known.get(id)
    if (hit) return hit
    const md5 = md5Prefix(await store.get(id))
    this.remember(id, md5)
    return md5
  }

  remember(id: string, md5: string): void {
    if (this.known.get(id) === md5) return
    this.known.set(id, md5)
    this.pending.push(`${id} ${md5}`)
  }

  async flush(): Promise<void> {
    if (!this.file || this.pending.length === 0) return
    const lines = this.pending.join('\n') + '\n'
    this.pending = []
    await fs.mkdir(path.dirname(this.file), {recursive: true})
    await fs.appendFile(this.file, lines)
  }
}
