import {isObjectId} from '../../core/hash.js'
import type {Backend, ListedKey} from '../backend.js'
import {packKeys} from './remote-pack-index.js'
import {remoteKeys} from './remote-store.js'
import {SHALLOW_KEY} from './shallow-remote.js'

/**
 * One part of the object-store layout: the prefix it lives under and a test that a key there
 * is one tilesync wrote. Every part of the layout is listed in STORED_PARTS, and
 * `remote destroy` removes exactly the keys these name, so other data sharing the bucket
 * prefix or directory is never touched. A new part adds its entry here.
 */
export interface StoredPart {
  name: string
  /** A key prefix ending in '/', or an exact key. */
  prefix: string
  owns(key: string): boolean
}

const REMOTE_PACK_KEY = /^packs\/[dt]-[0-9a-f]{64}\.(pack|idx)$/

const objectKey = /^objects\/([0-9a-f]{2})\/([0-9a-f]{62})$/

export const STORED_PARTS: StoredPart[] = [
  // Branch refs first: a clone or fetch running during a destroy then sees no branch rather than a broken one.
  {name: 'refs', prefix: remoteKeys.branchesPrefix, owns: (k) => k.length > remoteKeys.branchesPrefix.length && !k.endsWith('.lock')},
  {name: 'metadata', prefix: remoteKeys.meta, owns: (k) => k === remoteKeys.meta},
  {name: 'shallow list', prefix: SHALLOW_KEY, owns: (k) => k === SHALLOW_KEY},
  {name: 'objects', prefix: remoteKeys.objectsPrefix, owns: (k) => {
    const m = objectKey.exec(k)
    return m !== null && isObjectId(m[1] + m[2])
  }},
  // Pack files and their indexes, by the names a push gives them (d- data, t- trees; BLAKE3 of the index).
  {name: 'packs', prefix: packKeys.prefix, owns: (k) => REMOTE_PACK_KEY.test(k)},
  // Scratch keys: remote verify's probes, a directory remote's temp files of interrupted writes.
  {name: 'scratch keys', prefix: 'tmp/', owns: (k) => /^tmp\/(verify-[0-9a-f]{16}|[0-9a-f]{16}\.tmp)$/.test(k)},
]

/** Every key tilesync wrote on the remote, part by part in the order of STORED_PARTS. */
export async function* listStoredKeys(backend: Backend): AsyncIterable<ListedKey & {part: string}> {
  for (const part of STORED_PARTS) {
    if (!part.prefix.endsWith('/')) {
      // An exact key (a small file): read rather than listed, as a directory cannot list a file.
      const bytes = await backend.get(part.prefix)
      if (bytes) yield {key: part.prefix, size: bytes.length, lastModified: 0, part: part.name}
      continue
    }
    for await (const k of backend.list(part.prefix)) if (part.owns(k.key)) yield {...k, part: part.name}
  }
}
