import pLimit from 'p-limit'

import {TilesyncError} from '../../core/errors.js'
import {hashBytes, isObjectId} from '../../core/hash.js'
import type {Backend} from '../backend.js'
import {RemotePackIndex} from './remote-pack-index.js'

/** How many times a ref that does not hold an object id is read again before it is called damaged. */
const TORN_REF_RETRIES = 3

/**
 * Key layout on every object-store remote (directory, S3, R2). Private to src/remote/:
 * everything else asks the transport for objects by id.
 */
export const remoteKeys = {
  object: (id: string): string => `objects/${id.slice(0, 2)}/${id.slice(2)}`,
  branch: (name: string): string => `refs/heads/${name}`,
  branchesPrefix: 'refs/heads/',
  objectsPrefix: 'objects/',
  meta: 'tilesync.json',
}

export interface BranchRef {
  id: string
  etag: string
}

/**
 * Objects and refs on a remote, over any Backend. Every object read is re-hashed here, so a
 * tampered or truncated download is refused before anything local is written.
 */
export class RemoteStore {
  private index: RemotePackIndex | null = null
  /** Where pack indexes are cached when a caller names no place (the repository the remote was opened from). */
  cacheDir?: string

  constructor(readonly backend: Backend, readonly name: string) {}

  /**
   * The remote's pack indexes, read once per process (`cacheDir`: where indexes seen before
   * are kept, verified, between runs). Later calls return the same index.
   */
  /** Drops what was read of the remote's packs (after a destroy): the next use lists them again. */
  forgetPackIndex(): void {
    this.index = null
  }

  async packIndex(cacheDir?: string): Promise<RemotePackIndex> {
    this.index ??= new RemotePackIndex(this.backend, this.name, cacheDir ?? this.cacheDir)
    return this.index.load()
  }

  /** An object's stored bytes from its pack (a ranged read) or its loose key; null when absent. */
  private async readStored(id: string): Promise<Buffer | null> {
    const index = await this.packIndex()
    for (let attempt = 0; attempt < 2; attempt++) {
      const at = index.lookup(id)
      if (!at) break
      const key = `packs/${at.pack}.pack`
      const bytes = this.backend.getRange ? await this.backend.getRange(key, at.offset, at.length) : (await this.backend.get(key))?.subarray(at.offset, at.offset + at.length) ?? null
      if (bytes !== null) return bytes
      // Its pack went since the index was read (a prune repacked it): read the indexes again.
      await index.load(true)
    }
    return this.backend.get(remoteKeys.object(id))
  }

  async getObject(id: string): Promise<Buffer> {
    const bytes = await this.readStored(id)
    if (bytes === null) {
      throw new TilesyncError('OBJECT_MISSING', `object ${id} is missing on remote "${this.name}"`, {
        hint: 'the remote is incomplete; push again from a clone that has it, or run `tilesync fsck --remote`',
        data: {id},
      })
    }
    const actual = hashBytes(bytes)
    if (actual !== id) {
      throw new TilesyncError('OBJECT_CORRUPT', `object ${id} from remote "${this.name}" is corrupt (got ${bytes.length} bytes hashing to ${actual.slice(0, 12)}…)`, {
        hint: 'nothing was written; try again, and if it persists repair the remote with `tilesync push --force` from a good clone',
        data: {id, actual},
      })
    }
    return bytes
  }

  /** The file holding an object when the remote is a directory on this machine; else null. */
  objectFile(id: string): string | null {
    return this.backend.localFile?.(remoteKeys.object(id)) ?? null
  }

  /** The raw bytes, for callers that verify them elsewhere (on hashing workers); null when absent. */
  getObjectBytes(id: string): Promise<Buffer | null> {
    return this.readStored(id)
  }

  corrupt(id: string, actual: string, size: number): TilesyncError {
    return new TilesyncError('OBJECT_CORRUPT', `object ${id} from remote "${this.name}" is corrupt (got ${size} bytes hashing to ${actual.slice(0, 12)}…)`, {
      hint: 'nothing was written; try again, and if it persists repair the remote with `tilesync push --force` from a good clone',
      data: {id, actual},
    })
  }

  missing(id: string): TilesyncError {
    return new TilesyncError('OBJECT_MISSING', `object ${id} is missing on remote "${this.name}"`, {
      hint: 'the remote is incomplete; push again from a clone that has it, or run `tilesync fsck --remote`',
      data: {id},
    })
  }

  putObject(id: string, bytes: Buffer): Promise<void> {
    return this.backend.put(remoteKeys.object(id), bytes)
  }

  deleteObject(id: string): Promise<void> {
    return this.backend.delete(remoteKeys.object(id))
  }

  /** Copies an object from another store without the bytes passing here (S3 CopyObject); false when the two cannot. */
  async copyObjectFrom(source: RemoteStore, id: string): Promise<boolean> {
    return (await this.backend.copyFrom?.(source.backend, remoteKeys.object(id))) ?? false
  }

  async readBranch(branch: string): Promise<BranchRef | null> {
    let v = await this.backend.getVersioned(remoteKeys.branch(branch))
    // A store that writes an object in place (some S3 servers, such as s3rver) can be read half
    // written while another client moves the branch: read again before calling it damaged.
    for (let retry = 1; v && !isObjectId(v.bytes.toString('utf8').trim()) && retry <= TORN_REF_RETRIES; retry++) {
      await new Promise((resolve) => setTimeout(resolve, 50 * retry))
      v = await this.backend.getVersioned(remoteKeys.branch(branch))
    }
    if (!v) return null
    const id = v.bytes.toString('utf8').trim()
    if (!isObjectId(id)) {
      throw new TilesyncError('REMOTE_PROTOCOL', `remote "${this.name}" has a damaged ref ${branch}`, {hint: 'repair it with `tilesync push --force` from a good clone'})
    }
    return {id, etag: v.etag}
  }

  /** Moves a branch only if it is still where we saw it (null: only if it does not exist yet). */
  casBranch(branch: string, expectedEtag: string | null, id: string): Promise<boolean> {
    return this.backend.putIfMatch(remoteKeys.branch(branch), Buffer.from(`${id}\n`), expectedEtag)
  }

  /** Removes a branch only if it is still at version `etag`. */
  deleteBranch(branch: string, etag: string): Promise<boolean> {
    return this.backend.deleteIfMatch
      ? this.backend.deleteIfMatch(remoteKeys.branch(branch), etag)
      : this.readBranch(branch).then(async (now) => {
        if (now?.etag !== etag) return false
        await this.backend.delete(remoteKeys.branch(branch))
        return true
      })
  }

  /** Every branch name, damaged refs included. */
  async branchNames(): Promise<string[]> {
    const out: string[] = []
    for await (const k of this.backend.list(remoteKeys.branchesPrefix)) {
      const name = k.key.slice(remoteKeys.branchesPrefix.length)
      if (name && !name.endsWith('.lock')) out.push(name)
    }
    return out.sort((a, b) => a.localeCompare(b))
  }

  async listBranches(): Promise<Array<{name: string} & BranchRef>> {
    const out: Array<{name: string} & BranchRef> = []
    for (const name of await this.branchNames()) {
      const b = await this.readBranch(name)
      if (b) out.push({name, ...b})
    }
    return out
  }

  /** Every object, packed or loose, once: its id, stored size and last modification (a packed one: its pack's). */
  async *listObjects(): AsyncIterable<{id: string; size: number; lastModified: number; pack?: string}> {
    const index = await this.packIndex()
    const seen = new Set<string>()
    for (const p of index.packs.values()) {
      for (const e of p.entries) {
        if (seen.has(e.id)) continue
        seen.add(e.id)
        yield {id: e.id, size: e.length, lastModified: p.lastModified, pack: p.name}
      }
    }
    for await (const o of this.listLoose()) if (!seen.has(o.id)) yield o
  }

  /** Objects stored one key each (the layout before packs, and fsck's repairs). */
  async *listLoose(): AsyncIterable<{id: string; size: number; lastModified: number; key: string}> {
    for await (const k of this.backend.list(remoteKeys.objectsPrefix)) {
      const id = k.key.slice(remoteKeys.objectsPrefix.length).replace('/', '')
      if (isObjectId(id)) yield {id, size: k.size, lastModified: k.lastModified, key: k.key}
    }
  }

  /**
   * Stored sizes of those of `ids` that are present. Listing (a thousand keys per request)
   * replaces a request per object: only the fan-out prefixes the ids fall in when they are
   * few, else the whole object space.
   */
  async sizesOf(ids: Iterable<string>): Promise<Map<string, number>> {
    const index = await this.packIndex()
    const found = new Map<string, number>()
    const rest: string[] = []
    for (const id of ids) {
      const at = index.lookup(id)
      if (at && (index.packs.get(at.pack)?.size ?? 0) >= at.offset + at.length) found.set(id, at.length)
      else rest.push(id)
    }
    const wanted = new Map(rest.map((id) => [remoteKeys.object(id), id]))
    if (wanted.size === 0) return found
    const prefixes = [...new Set([...wanted.keys()].map((k) => k.slice(0, remoteKeys.objectsPrefix.length + 3)))]
    const scan = prefixes.length <= 32 ? prefixes : [remoteKeys.objectsPrefix]
    const limit = pLimit(8)
    await Promise.all(scan.map((prefix) => limit(async () => {
      for await (const k of this.backend.list(prefix)) if (wanted.has(k.key)) found.set(wanted.get(k.key)!, k.size)
    })))
    return found
  }

  async readMeta(): Promise<Record<string, unknown> | null> {
    const bytes = await this.backend.get(remoteKeys.meta)
    if (!bytes) return null
    try {
      return JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
    } catch {
      return null
    }
  }

  writeMeta(meta: Record<string, unknown>): Promise<void> {
    return this.backend.put(remoteKeys.meta, Buffer.from(JSON.stringify(meta, null, 2) + '\n'))
  }
}
