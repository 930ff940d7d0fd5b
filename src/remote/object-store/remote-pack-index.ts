import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {TilesyncError} from '../../core/errors.js'
import {hashBytes} from '../../core/hash.js'
import {decodeIndex} from '../../store/pack-format.js'
import type {Backend} from '../backend.js'
import {kindOfPack, type PackKind, REMOTE_PACK_NAME} from './pack-builder.js'

export const packKeys = {
  prefix: 'packs/',
  pack: (name: string): string => `packs/${name}.pack`,
  index: (name: string): string => `packs/${name}.idx`,
}

export interface RemotePack {
  name: string
  kind: PackKind
  /** The pack file's size as listed (0 when its file is not there). */
  size: number
  lastModified: number
  entries: Array<{id: string; offset: number; length: number}>
}

export interface RemotePacked {
  pack: string
  offset: number
  length: number
}

/**
 * What a remote holds in packs, learnt from its pack indexes: one listing of `packs/`, then
 * only the indexes this machine has not seen, each verified against its name (the BLAKE3 of
 * the index) and its own checksum before it is believed. Indexes already seen come from a
 * cache under `.tilesync/remotes/NAME/packs/`, verified the same way each time they are read;
 * new ones are written there by `saveCache()`, which a fetch or push calls only once it has
 * succeeded (a refused download leaves nothing behind).
 */
export class RemotePackIndex {
  readonly packs = new Map<string, RemotePack>()
  private readonly byId = new Map<string, RemotePacked>()
  private readonly fresh = new Map<string, Buffer>()
  /** Every index read or written here, by pack: a promotion caches the indexes of the packs it copied. */
  private readonly raw = new Map<string, Buffer>()
  private loading: Promise<this> | null = null

  constructor(private readonly backend: Backend, private readonly remoteName: string, private readonly cacheDir?: string) {}

  lookup(id: string): RemotePacked | undefined {
    return this.byId.get(id)
  }

  get size(): number {
    return this.byId.size
  }

  ids(): IterableIterator<string> {
    return this.byId.keys()
  }

  /** Reads the listing and every index not read yet; `force` looks again (a pack went missing). */
  load(force = false): Promise<this> {
    if (!this.loading || force) {
      const run = this.read()
      this.loading = run
      run.catch(() => {
        if (this.loading === run) this.loading = null
      })
    }
    return this.loading
  }

  private async read(): Promise<this> {
    const listed = new Map<string, {idx?: number; pack?: number; lastModified: number}>()
    for await (const k of this.backend.list(packKeys.prefix)) {
      const m = /^packs\/([dt]-[0-9a-f]{64})\.(pack|idx)$/.exec(k.key)
      if (!m) continue
      const e = listed.get(m[1]) ?? {lastModified: 0}
      if (m[2] === 'idx') e.idx = k.size
      else {
        e.pack = k.size
        e.lastModified = k.lastModified
      }
      listed.set(m[1], e)
    }
    for (const name of [...this.packs.keys()]) if (!listed.get(name)?.idx) this.forget(name)
    const todo = [...listed].filter(([name, e]) => e.idx !== undefined && REMOTE_PACK_NAME.test(name))
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const [name, e] = todo[next++]
        const known = this.packs.get(name)
        if (known) {
          known.size = e.pack ?? 0
          known.lastModified = e.lastModified
          continue
        }
        const entries = await this.readIndex(name)
        if (entries) this.add({name, kind: kindOfPack(name), size: e.pack ?? 0, lastModified: e.lastModified, entries})
      }
    }
    await Promise.all(Array.from({length: Math.min(8, todo.length)}, worker))
    return this
  }

  /** Indexes read from the remote since the last save go to the cache. */
  async saveCache(): Promise<void> {
    if (!this.cacheDir || this.fresh.size === 0) return
    await fs.mkdir(this.cacheDir, {recursive: true})
    for (const [name, bytes] of this.fresh) {
      const tmp = path.join(this.cacheDir, `${name}.idx.${process.pid}.tmp`)
      await fs.writeFile(tmp, bytes)
      await fs.rename(tmp, path.join(this.cacheDir, `${name}.idx`))
    }
    this.fresh.clear()
    // Indexes of packs the remote no longer has (a prune repacked them) leave the cache.
    for (const f of await fs.readdir(this.cacheDir).catch(() => [] as string[])) {
      if (f.endsWith('.idx') && !this.packs.has(f.slice(0, -4))) await fs.rm(path.join(this.cacheDir, f), {force: true})
    }
  }

  /** Records a pack this process just uploaded (no need to read its index back). */
  noteUploaded(name: string, index: Buffer, packSize: number): void {
    if (this.packs.has(name)) return
    this.add({name, kind: kindOfPack(name), size: packSize, lastModified: Date.now(), entries: decodeIndex(index)})
    this.fresh.set(name, index)
    this.raw.set(name, index)
  }

  /** Records a pack known from elsewhere (copied from another remote's, whose index was verified there). */
  noteKnown(p: RemotePack, index?: Buffer): void {
    if (this.packs.has(p.name)) return
    this.add({...p, lastModified: Date.now()})
    if (index) {
      this.fresh.set(p.name, index)
      this.raw.set(p.name, index)
    }
  }

  /** The bytes of a pack's index, when this process read or wrote it. */
  indexBytes(name: string): Buffer | undefined {
    return this.raw.get(name)
  }

  private add(p: RemotePack): void {
    this.packs.set(p.name, p)
    for (const e of p.entries) if (!this.byId.has(e.id)) this.byId.set(e.id, {pack: p.name, offset: e.offset, length: e.length})
  }

  private forget(name: string): void {
    const p = this.packs.get(name)
    this.packs.delete(name)
    if (!p) return
    for (const e of p.entries) if (this.byId.get(e.id)?.pack === name) this.byId.delete(e.id)
    for (const other of this.packs.values()) for (const e of other.entries) if (!this.byId.has(e.id)) this.byId.set(e.id, {pack: other.name, offset: e.offset, length: e.length})
  }

  private async readIndex(name: string): Promise<RemotePack['entries'] | null> {
    if (this.cacheDir) {
      const cached = await fs.readFile(path.join(this.cacheDir, `${name}.idx`)).catch(() => null)
      if (cached && hashBytes(cached) === name.slice(2)) {
        try {
          const entries = decodeIndex(cached)
          this.raw.set(name, cached)
          return entries
        } catch {
          // A damaged cache entry is read again from the remote.
        }
      }
    }
    const bytes = await this.backend.get(packKeys.index(name))
    // Removed since the listing (a prune repacked it): its objects are elsewhere now.
    if (bytes === null) return null
    let entries: RemotePack['entries']
    try {
      if (hashBytes(bytes) !== name.slice(2)) throw new Error(`its ${bytes.length} bytes do not hash to its name`)
      entries = decodeIndex(bytes)
    } catch (error) {
      throw new TilesyncError('OBJECT_CORRUPT', `pack index ${name.slice(0, 14)} on remote "${this.remoteName}" is damaged (${(error as Error).message})`, {
        hint: 'nothing was changed here; run `tilesync fsck --remote` and repair the remote by pushing from a good clone',
        data: {pack: name},
      })
    }
    this.fresh.set(name, bytes)
    this.raw.set(name, bytes)
    return entries
  }
}
