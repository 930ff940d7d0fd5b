import pLimit from 'p-limit'

import {hashBytes} from '../../core/hash.js'
import {emptyPlan} from './object-plan.js'
import {uploadPacks} from './pack-upload.js'
import type {RemoteStore} from './remote-store.js'
import type {ObjectSource} from './transfer.js'

/**
 * Commits and trees are msgpack arrays (snapshot/model.ts); tile images are PNG or other
 * bytes. Only where an object lands depends on this (tree packs are fetched whole first), never
 * whether it is read correctly.
 */
function looksStructured(bytes: Buffer): boolean {
  const b = bytes[0]
  return (b >= 0x90 && b <= 0x9f) || b === 0xdc || b === 0xdd
}

/**
 * Moves the loose objects of a remote written before packs existed (one key per object) into
 * packs, then records `layout: "packs"` in its tilesync.json so later pushes skip this. The
 * bytes come from the local store where it has them (a push's clone usually has all of
 * them), else from the remote, verified either way; each loose key is removed only once the
 * index of the pack holding it has landed, so a reader finds every object throughout (a
 * reader that planned a loose read finds the pack when it looks again: see pack-reads.ts).
 * Objects written loose after the listing stay loose and readable.
 */
export async function upgradeLooseLayout(remote: RemoteStore, local: ObjectSource & {tryGet?(id: string): Promise<Buffer | null>}, meta: Record<string, unknown>): Promise<{packed: number}> {
  const loose: Array<{id: string; key: string}> = []
  for await (const o of remote.listLoose()) loose.push({id: o.id, key: o.key})
  if (loose.length > 0) {
    const index = await remote.packIndex()
    const todo = loose.filter((o) => !index.lookup(o.id))
    const bytesOf = new Map<string, Buffer>()
    const plan = emptyPlan()
    const limit = pLimit(16)
    // Classify first (a loose object's kind is only known from its bytes); bytes are held only
    // for the objects the local store lacks, read from the remote once.
    await Promise.all(todo.map((o) => limit(async () => {
      let bytes = (await local.tryGet?.(o.id)) ?? null
      if (bytes === null) {
        bytes = await remote.getObject(o.id)
        bytesOf.set(o.id, bytes)
      }
      if (looksStructured(bytes)) plan.leaves.add(o.id)
      else plan.blobs.set(o.id, bytes.length)
    })))
    const source: ObjectSource = {
      get: async (id) => {
        const held = bytesOf.get(id)
        if (held) {
          bytesOf.delete(id)
          return held
        }
        const bytes = await local.tryGet?.(id)
        if (bytes && hashBytes(bytes) === id) return bytes
        return remote.getObject(id)
      },
    }
    const noJournal = {has: () => false, record: () => {}, flush: async () => {}}
    await uploadPacks(source, remote, plan, noJournal, {concurrency: 16, verb: 'push', sizeOf: (id) => plan.blobs.get(id) ?? 0})
    const packedNow = await remote.packIndex()
    await Promise.all(loose.map((o) => limit(async () => {
      if (packedNow.lookup(o.id)) await remote.backend.delete(o.key)
    })))
  }
  await remote.writeMeta({...meta, layout: 'packs'})
  return {packed: loose.length}
}
