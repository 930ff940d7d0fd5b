import * as fs from 'node:fs'

import {hashBytes} from '../../core/hash.js'
import type {LocalObjectStore} from '../../store/local-object-store.js'
import {encodeIndex} from '../../store/pack-format.js'
import {packKeys, type RemotePack} from './remote-pack-index.js'
import type {RemoteStore} from './remote-store.js'

/** Bytes read at a time while checking a linked pack. */
const CHECK_CHUNK = 8 * 1024 * 1024

/**
 * Hard-links a pack of a remote that is a directory on this machine into the local store, as
 * git does for a local clone: the pack formats are the same, so no byte is copied. The link
 * is made under the pack's local name (invisible to other processes until its index exists),
 * every object in it is read back and checked against its id, and only then is its index
 * written. Both sides only ever replace a pack whole (a prune or gc writes new packs and
 * removes old ones), never edit one in place, so sharing the file is safe. Returns the ids it
 * holds, or null when no link can be made (another filesystem, not a plain file, the pack is
 * here already): the caller then reads the objects instead.
 */
export async function linkPack(local: LocalObjectStore, remote: RemoteStore, pack: RemotePack): Promise<Array<{id: string; length: number}> | null> {
  const source = remote.backend.localFile?.(packKeys.pack(pack.name))
  if (!source) return null
  const name = `pack-${pack.name.slice(2, 26)}`
  const target = local.packs.packPath(name)
  if (fs.existsSync(target)) return null
  fs.mkdirSync(local.packs.dir, {recursive: true})
  try {
    fs.linkSync(source, target)
  } catch {
    return null
  }
  let ok = false
  try {
    // link() does not follow a symlink: a remote that planted one gets it read, not linked.
    if (!fs.lstatSync(target).isFile()) return null
    const entries = [...pack.entries].sort((a, b) => a.offset - b.offset)
    const fd = fs.openSync(target, 'r')
    try {
      let at = 0
      while (at < entries.length) {
        const start = entries[at].offset
        let end = at
        while (end < entries.length && entries[end].offset + entries[end].length - start <= CHECK_CHUNK) end++
        if (end === at) end = at + 1
        const last = entries[end - 1]
        const bytes = Buffer.allocUnsafe(last.offset + last.length - start)
        const n = fs.readSync(fd, bytes, 0, bytes.length, start)
        for (const e of entries.slice(at, end)) {
          const part = bytes.subarray(e.offset - start, Math.min(n, e.offset - start + e.length))
          const actual = hashBytes(part)
          if (part.length !== e.length || actual !== e.id) throw remote.corrupt(e.id, actual, part.length)
        }
        at = end
        // Checking 300 MB holds the thread; let the database writer and others in between.
        await new Promise((resolve) => setImmediate(resolve))
      }
    } finally {
      fs.closeSync(fd)
    }
    for (const e of entries) local.notePacked(e.id, {pack: name, offset: e.offset, length: e.length})
    const tmp = `${local.packs.indexPath(name)}.${process.pid}.tmp`
    fs.writeFileSync(tmp, encodeIndex(entries))
    fs.renameSync(tmp, local.packs.indexPath(name))
    local.notePackFinished(name)
    ok = true
    return entries.map((e) => ({id: e.id, length: e.length}))
  } finally {
    if (!ok) fs.rmSync(target, {force: true})
  }
}
