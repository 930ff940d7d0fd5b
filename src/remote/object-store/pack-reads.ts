import pLimit from 'p-limit'

import {hashBytes} from '../../core/hash.js'
import type {RemoteStore} from './remote-store.js'
import {packKeys, type RemotePackIndex, type RemotePacked} from './remote-pack-index.js'

/** Neighbouring objects closer than this are read in one range: a round trip costs more than the bytes between. */
const COALESCE_GAP = 256 * 1024
/** Ranges are cut at about this size, so a whole pack arrives in pieces that memory holds easily. */
const MAX_RANGE = 8 * 1024 * 1024
/** Needing this share of a pack's bytes or more, the whole pack is read (in MAX_RANGE pieces). */
const WHOLE_PACK_SHARE = 0.5
const RANGES_IN_FLIGHT = 6

export interface PackRange {
  pack: string
  start: number
  length: number
  objects: Array<{id: string} & RemotePacked>
}

/**
 * The ranged reads that bring `ids` from their packs: per pack, the objects sorted by place,
 * neighbours merged into one range (the whole pack when most of it is wanted), cut into
 * pieces of at most MAX_RANGE. Ids no pack holds are returned as `loose` (the layout before packs).
 */
export function planRanges(index: RemotePackIndex, ids: Iterable<string>): {ranges: PackRange[]; loose: string[]} {
  const byPack = new Map<string, Array<{id: string} & RemotePacked>>()
  const loose: string[] = []
  for (const id of ids) {
    const at = index.lookup(id)
    if (!at) {
      loose.push(id)
      continue
    }
    let list = byPack.get(at.pack)
    if (!list) byPack.set(at.pack, (list = []))
    list.push({id, ...at})
  }
  const ranges: PackRange[] = []
  for (const [pack, list] of byPack) {
    list.sort((a, b) => a.offset - b.offset)
    const wanted = list.reduce((s, o) => s + o.length, 0)
    const size = index.packs.get(pack)?.size ?? 0
    const gap = size > 0 && wanted >= size * WHOLE_PACK_SHARE ? Infinity : COALESCE_GAP
    let current: PackRange | null = null
    for (const o of list) {
      const end = o.offset + o.length
      if (current && o.offset - (current.start + current.length) <= gap && end - current.start <= MAX_RANGE) {
        current.length = Math.max(current.length, end - current.start)
        current.objects.push(o)
        continue
      }
      current = {pack, start: o.offset, length: o.length, objects: [o]}
      ranges.push(current)
    }
  }
  return {ranges, loose}
}

export interface ReadOptions {
  /** Called once per object, as its range arrives; bytes are verified unless `verify` is false (the callback then must). */
  onObject(id: string, bytes: Buffer): Promise<void> | void
  verify?: boolean
  /** Called per request made (tests and progress count them). */
  onRequest?(): void
  /** Stop starting new reads (another part of the caller failed). */
  stopped?(): boolean
}

/**
 * Reads objects from a remote: packed ones by ranged reads (planRanges), loose ones by key.
 * A pack that has gone since its index was read (a prune repacked it) sends the index to be
 * read again, once; what is still not found then is OBJECT_MISSING. A range that comes back
 * short (a cut pack) or bytes that do not hash to their id are OBJECT_CORRUPT.
 */
export async function readObjects(remote: RemoteStore, index: RemotePackIndex, ids: Iterable<string>, options: ReadOptions): Promise<void> {
  let todo = [...new Set(ids)]
  const verify = options.verify ?? true
  const deliver = async (id: string, bytes: Buffer): Promise<void> => {
    if (verify) {
      const actual = hashBytes(bytes)
      if (actual !== id) throw remote.corrupt(id, actual, bytes.length)
    }
    await options.onObject(id, bytes)
  }
  for (let attempt = 0; todo.length > 0; attempt++) {
    const {ranges, loose} = planRanges(index, todo)
    const gone: string[] = []
    const limit = pLimit(RANGES_IN_FLIGHT)
    let failure: {error: unknown} | undefined
    await Promise.all([
      ...ranges.map((r) => limit(async () => {
        if (failure || options.stopped?.()) return
        try {
          options.onRequest?.()
          const bytes = await remote.backend.getRange?.(packKeys.pack(r.pack), r.start, r.length) ??
            (await remote.backend.get(packKeys.pack(r.pack)))?.subarray(r.start, r.start + r.length) ?? null
          if (bytes === null) {
            gone.push(...r.objects.map((o) => o.id))
            return
          }
          for (const o of r.objects) {
            const from = o.offset - r.start
            const part = bytes.subarray(from, from + o.length)
            if (part.length < o.length) throw remote.corrupt(o.id, hashBytes(part), part.length)
            await deliver(o.id, part)
          }
        } catch (error) {
          failure ??= {error}
        }
      })),
      ...loose.map((id) => limit(async () => {
        if (failure || options.stopped?.()) return
        try {
          options.onRequest?.()
          const bytes = await remote.getObjectBytes(id)
          if (bytes === null) gone.push(id)
          else await deliver(id, bytes)
        } catch (error) {
          failure ??= {error}
        }
      })),
    ])
    if (failure) throw failure.error
    if (gone.length === 0 || attempt >= 1) {
      if (gone.length > 0) throw remote.missing(gone[0])
      return
    }
    await index.load(true)
    todo = gone
  }
}
