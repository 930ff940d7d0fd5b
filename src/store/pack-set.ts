import {closeSync, openSync, readFileSync, readSync} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {hashBytes} from '../core/hash.js'
import {syncDirectory} from './durability.js'
import {decodeIndex, encodeIndex, PACK_MAGIC, PACK_NAME, type PackEntry, RECORD_HEADER} from './pack-format.js'
import {PackWriter} from './pack-writer.js'

/** Pack files a PackSet keeps open for reading at most. */
const OPEN_PACKS = 16

export interface PackedObject {
  pack: string
  offset: number
  length: number
}

/**
 * The packs of one store, as seen by this process: every index in `objects/pack/` plus the
 * objects this process has appended to packs whose index is not written yet (a clone reads
 * blobs back while they are still arriving). Indexes are read on first use and again
 * whenever the directory changes, since other processes add and rewrite packs.
 */
export class PackSet {
  private readonly byId = new Map<string, PackedObject>()
  private readonly loaded = new Map<string, PackEntry[]>()
  private readonly pending = new Set<string>()
  private seenMtime = -1
  private readonly fds = new Map<string, number>()
  /** Indexes that could not be read (fsck reports them; their objects count as absent). */
  readonly damaged = new Map<string, string>()

  constructor(readonly dir: string) {}

  packPath(name: string): string {
    return path.join(this.dir, `${name}.pack`)
  }

  indexPath(name: string): string {
    return path.join(this.dir, `${name}.idx`)
  }

  /** An object this process has just appended to a pack still being written. */
  notePending(id: string, at: PackedObject): void {
    this.pending.add(at.pack)
    if (!this.byId.has(id)) this.byId.set(id, at)
  }

  /** Where an object is among the packs already read (no look at the directory). */
  loadedEntry(id: string): PackedObject | undefined {
    return this.byId.get(id)
  }

  async lookup(id: string): Promise<PackedObject | undefined> {
    const hit = this.byId.get(id)
    if (hit) return hit
    // Look again whatever refreshIfChanged says: when concurrent lookups race, the one whose
    // refresh finds nothing new (another has just loaded the indexes) must still see them.
    await this.refreshIfChanged()
    return this.byId.get(id)
  }

  /** Every packed object, once each, with its pack. */
  async *entries(): AsyncGenerator<{id: string} & PackedObject> {
    await this.refreshIfChanged()
    for (const [id, at] of this.byId) yield {id, ...at}
  }

  /**
   * Reads an object's bytes as stored (unverified); null when its pack has gone. Synchronous,
   * as loose objects are read: one object is a small read from the page cache, and the
   * promise API's round trips to the thread pool (open, read, close) cost more than the read
   * when fsck, push or a tree walk reads thousands of packed objects.
   */
  async read(at: PackedObject): Promise<Buffer | null> {
    let fd = this.fds.get(at.pack)
    if (fd === undefined) {
      try {
        fd = openSync(this.packPath(at.pack), 'r')
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw error
      }
      // A few packs stay open: a push reads 200,000 objects from a dozen packs, and an open and
      // a close per object were a tenth of its time. A pack is only ever replaced whole (a new
      // name), so an open one keeps reading the bytes its index describes.
      if (this.fds.size >= OPEN_PACKS) this.closeFds()
      this.fds.set(at.pack, fd)
    }
    {
      const bytes = Buffer.allocUnsafe(at.length)
      let done = 0
      while (done < at.length) {
        const n = readSync(fd, bytes, done, at.length - done, at.offset + done)
        if (n === 0) break
        done += n
      }
      // A pack cut short reads as the bytes that are there; the caller's hash check reports it.
      return done === at.length ? bytes : bytes.subarray(0, done)
    }
  }

  private closeFds(): void {
    for (const fd of this.fds.values()) closeSync(fd)
    this.fds.clear()
  }

  /** Re-reads the directory when it changed since the last look; says whether it did. */
  async refreshIfChanged(): Promise<boolean> {
    const st = await fs.stat(this.dir).catch(() => null)
    const mtime = st ? st.mtimeMs : 0
    if (mtime === this.seenMtime) return false
    await this.refresh()
    this.seenMtime = mtime
    return true
  }

  async refresh(): Promise<void> {
    const names = new Set((await fs.readdir(this.dir).catch(() => [] as string[]))
      .filter((f) => f.endsWith('.idx'))
      .map((f) => f.slice(0, -4))
      .filter((n) => PACK_NAME.test(n)))
    for (const name of [...this.loaded.keys()]) if (!names.has(name)) this.forget(name)
    for (const name of names) {
      if (this.loaded.has(name)) continue
      let entries: PackEntry[]
      try {
        // Synchronous: an index is one small read, and a commit's first lookup reads them all,
        // where three thread-pool round trips per file cost more than the reads.
        entries = decodeIndex(readFileSync(this.indexPath(name)))
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
        this.damaged.set(name, (error as Error).message)
        continue
      }
      this.damaged.delete(name)
      this.pending.delete(name)
      this.loaded.set(name, entries)
      for (const e of entries) if (!this.byId.has(e.id)) this.byId.set(e.id, {pack: name, offset: e.offset, length: e.length})
    }
  }

  /** Drops a pack's objects from view (its index is gone); another copy elsewhere takes over. */
  private forget(name: string): void {
    this.closeFds()
    const entries = this.loaded.get(name) ?? []
    this.loaded.delete(name)
    for (const e of entries) {
      if (this.byId.get(e.id)?.pack !== name) continue
      this.byId.delete(e.id)
      for (const [other, list] of this.loaded) {
        const again = list.find((x) => x.id === e.id)
        if (again) {
          this.byId.set(e.id, {pack: other, offset: again.offset, length: again.length})
          break
        }
      }
    }
  }

  /** The packs (name, file time) that hold any of `ids`. */
  async packsHolding(ids: Iterable<string>): Promise<Set<string>> {
    await this.refreshIfChanged()
    const out = new Set<string>()
    for (const id of ids) {
      const at = this.byId.get(id)
      if (at && this.loaded.has(at.pack)) out.add(at.pack)
    }
    return out
  }

  /**
   * Removes `drop` from the packs holding them (gc, fsck's repair): each such pack is
   * rewritten with the objects it keeps, made durable, and only then is the old one removed,
   * so a crash at any point leaves every kept object readable (perhaps twice).
   */
  async remove(drop: ReadonlySet<string>, tmpDir: string, durable: boolean): Promise<void> {
    for (const name of await this.packsHolding(drop)) {
      await this.rewrite([name], (e) => !drop.has(e.id), tmpDir, durable)
    }
    await this.reload()
  }

  /**
   * Merges the small packs into one (gc), as git's repack does: every commit that packs a few
   * dozen tiles leaves a pack per hashing worker, and each pack is one more index to read
   * whenever a process first looks for a packed object. Packs of `smallBytes` or more stay
   * as they are; nothing is merged below `minCount` small packs. First, packs whose every
   * object another pack also holds are dropped (see dropRedundant). Says how many packs went.
   */
  async consolidate(tmpDir: string, durable: boolean, options: {smallBytes?: number; minCount?: number; dryRun?: boolean} = {}): Promise<{merged: number}> {
    const smallBytes = options.smallBytes ?? 32 * 1024 * 1024
    await this.reload()
    // Only packs whose file is there count (as holding a copy, or as small).
    const stats = new Map<string, {size: number; mtimeMs: number}>()
    for (const name of this.loaded.keys()) {
      const st = await fs.stat(this.packPath(name)).catch(() => null)
      if (st) stats.set(name, {size: st.size, mtimeMs: st.mtimeMs})
    }
    const dropped = await this.dropRedundant(stats, Boolean(options.dryRun))
    if (dropped.size > 0 && !options.dryRun) await this.reload()
    const small = [...stats].filter(([name, st]) => !dropped.has(name) && st.size < smallBytes).map(([name]) => name)
    if (small.length < (options.minCount ?? 16)) return {merged: dropped.size}
    if (options.dryRun) return {merged: dropped.size + small.length}
    const seen = new Set<string>()
    // An object held twice (two writers packed it at once) is kept once.
    await this.rewrite(small.sort(), (e) => !seen.has(e.id) && (seen.add(e.id), true), tmpDir, durable)
    await this.reload()
    return {merged: dropped.size + small.length}
  }

  /**
   * Drops packs whose every object another indexed (so durable) pack also holds: what a merge
   * or rewrite killed before removing its sources leaves behind (git's pack-redundant). The
   * smallest go first, so a merged pack outlives its sources, and a pack goes only while each
   * of its objects keeps a copy elsewhere. gc ages a packed object by its pack's file time, so
   * a pack that keeps the copy takes the dropped pack's time when that is newer: no object
   * looks older than it did.
   */
  private async dropRedundant(stats: Map<string, {size: number; mtimeMs: number}>, dryRun: boolean): Promise<Set<string>> {
    const holders = new Map<string, Set<string>>()
    for (const name of stats.keys()) {
      for (const e of this.loaded.get(name)!) {
        let h = holders.get(e.id)
        if (!h) holders.set(e.id, (h = new Set()))
        h.add(name)
      }
    }
    const dropped = new Set<string>()
    for (const name of [...stats.keys()].sort((a, b) => stats.get(a)!.size - stats.get(b)!.size)) {
      const entries = this.loaded.get(name)!
      if (!entries.every((e) => holders.get(e.id)!.size > 1)) continue
      for (const e of entries) holders.get(e.id)!.delete(name)
      dropped.add(name)
      if (dryRun) continue
      const time = stats.get(name)!.mtimeMs
      for (const keeper of new Set(entries.flatMap((e) => [...holders.get(e.id)!]))) {
        const kept = stats.get(keeper)!
        if (kept.mtimeMs >= time) continue
        await fs.utimes(this.packPath(keeper), new Date(time), new Date(time))
        kept.mtimeMs = time
      }
      await this.removeFiles(name)
    }
    return dropped
  }

  /**
   * Writes the entries of `sources` that `keep` accepts into new packs, durable, then removes
   * the sources. The new packs take the newest source pack's file time: gc ages packed
   * objects by it, and a rewrite must not make old garbage look young (nor young look old).
   */
  private async rewrite(sources: string[], keep: (e: PackEntry) => boolean, tmpDir: string, durable: boolean): Promise<void> {
    const writer = new PackWriter(this.dir, tmpDir, {durable})
    let newest = 0
    for (const name of sources) {
      newest = Math.max(newest, (await fs.stat(this.packPath(name))).mtimeMs)
      for (const e of this.loaded.get(name)!) {
        if (!keep(e)) continue
        const bytes = await this.read({pack: name, offset: e.offset, length: e.length})
        if (bytes === null) throw new Error(`pack ${name} vanished while being rewritten`)
        writer.append(e.id, bytes)
      }
    }
    const made = await writer.finish()
    const time = new Date(newest)
    for (const pack of made) await fs.utimes(this.packPath(pack.name), time, time)
    // The new indexes' names reach the disk before the sources' removal can.
    if (durable) await syncDirectory(this.dir)
    for (const name of sources) await this.removeFiles(name)
  }

  /** Index first: without it the pack holds nothing, so a crash in between leaves an orphan gc removes. */
  private async removeFiles(name: string): Promise<void> {
    await fs.rm(this.indexPath(name), {force: true})
    await fs.rm(this.packPath(name), {force: true})
  }

  /** Forgets every index read so far (keeping this process's unfinished packs) and reads them again. */
  async reload(): Promise<void> {
    this.closeFds()
    for (const [id, at] of [...this.byId]) if (!this.pending.has(at.pack)) this.byId.delete(id)
    this.loaded.clear()
    this.seenMtime = -1
    await this.refreshIfChanged()
  }

  /** Pack files with no index: unfinished writes (gc removes them once old). */
  async orphans(): Promise<string[]> {
    const files = await fs.readdir(this.dir).catch(() => [] as string[])
    const indexed = new Set(files.filter((f) => f.endsWith('.idx')).map((f) => f.slice(0, -4)))
    return files.filter((f) => f.endsWith('.pack') && !indexed.has(f.slice(0, -5)) && !this.pending.has(f.slice(0, -5)))
      .map((f) => path.join(this.dir, f))
  }

  /**
   * Writes a damaged index again from its pack's records (fsck's repair). Records whose bytes
   * do not hash to their id, and anything after a torn record, are left out and reported.
   */
  async rebuildIndex(name: string, tmpDir: string): Promise<{kept: number; dropped: number}> {
    const handle = await fs.open(this.packPath(name), 'r')
    const entries: PackEntry[] = []
    let dropped = 0
    try {
      const size = (await handle.stat()).size
      const magic = Buffer.alloc(PACK_MAGIC.length)
      await handle.read(magic, 0, magic.length, 0)
      let at = magic.equals(PACK_MAGIC) ? PACK_MAGIC.length : size
      const header = Buffer.alloc(RECORD_HEADER)
      while (at + RECORD_HEADER <= size) {
        await handle.read(header, 0, RECORD_HEADER, at)
        const id = header.toString('hex', 0, 32)
        const length = header.readUInt32LE(32)
        const start = at + RECORD_HEADER
        if (start + length > size) break
        const bytes = Buffer.alloc(length)
        await handle.read(bytes, 0, length, start)
        if (hashBytes(bytes) === id) entries.push({id, offset: start, length})
        else dropped++
        at = start + length
      }
      if (at < size) dropped++
    } finally {
      await handle.close()
    }
    const tmp = path.join(tmpDir, `${name}.idx.${process.pid}.rebuild.tmp`)
    await fs.writeFile(tmp, encodeIndex(entries))
    await fs.rename(tmp, this.indexPath(name))
    this.damaged.delete(name)
    await this.reload()
    return {kept: entries.length, dropped}
  }
}
