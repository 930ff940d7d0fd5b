import {hashBytes} from '../../src/core/hash.js'
import type {Backend} from '../../src/remote/backend.js'
import {remoteKeys} from '../../src/remote/object-store/remote-store.js'
import {decodeIndex} from '../../src/store/pack-format.js'

/** A pack's index key on an object-store remote; its pack file is the same name with `.pack`. */
export const PACK_INDEX_KEY = /^packs\/([dt]-[0-9a-f]{64})\.idx$/
/** A tree pack's file (commits and trees: what a push sends after its images). */
export const TREE_PACK_KEY = /^packs\/t-[0-9a-f]{64}\.pack$/

/**
 * The object ids stored by writing `keys` (loose object keys, pack indexes; pack files and
 * everything else are left out: a pack's objects count once its index is there), in key order.
 */
export async function idsStoredAt(backend: Backend, keys: string[]): Promise<string[]> {
  const out: string[] = []
  for (const key of [...new Set(keys)].sort()) {
    if (key.startsWith(remoteKeys.objectsPrefix)) out.push(key.slice(remoteKeys.objectsPrefix.length).replace('/', ''))
    else if (PACK_INDEX_KEY.test(key)) {
      const bytes = await backend.get(key)
      if (bytes) for (const e of decodeIndex(bytes)) out.push(e.id)
    }
  }
  return out
}

/** Every pack of a remote with its entries. */
export async function remotePacks(backend: Backend): Promise<Array<{name: string; entries: Array<{id: string; offset: number; length: number}>}>> {
  const out = []
  for await (const k of backend.list('packs/')) {
    const m = PACK_INDEX_KEY.exec(k.key)
    if (m) out.push({name: m[1], entries: decodeIndex((await backend.get(k.key))!)})
  }
  return out
}

/**
 * Damages what a remote serves for `blob`: its loose key, or its bytes inside the pack that
 * holds it. 'append' changes bytes (a pack cannot grow one record), 'truncate' cuts the value
 * half-way through the blob.
 */
export async function tamperStored(backend: Backend, blob: Buffer, how: 'append' | 'truncate'): Promise<void> {
  const id = hashBytes(blob)
  for (const p of await remotePacks(backend)) {
    const e = p.entries.find((x) => x.id === id)
    if (!e) continue
    const key = `packs/${p.name}.pack`
    const bytes = Buffer.from((await backend.get(key))!)
    if (how === 'truncate') await backend.put(key, bytes.subarray(0, e.offset + (e.length >> 1)))
    else {
      bytes.write('tampered', e.offset + Math.max(0, e.length - 8), 'latin1')
      await backend.put(key, bytes)
    }
    return
  }
  const key = remoteKeys.object(id)
  const bytes = (await backend.get(key))!
  await backend.put(key, how === 'append' ? Buffer.concat([bytes, Buffer.from('tampered')]) : bytes.subarray(0, bytes.length >> 1))
}
