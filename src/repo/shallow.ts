import {readFileSync} from 'node:fs'
import * as path from 'node:path'

import {isObjectId} from '../core/hash.js'
import {writeFileAtomic} from '../util/write-file-atomic.js'

/**
 * Shallow roots: commits whose parents are deliberately absent because `tilesync prune`
 * cut the history of a remote below them. A remote lists them under the key `shallow`; a
 * repository that fetched such a commit without its parents lists it in `.tilesync/shallow`.
 * History walks treat a shallow commit's absent parents as the end of history; everywhere
 * else a missing parent is damage, which fsck reports.
 *
 * One Set per file is shared by everything in the process, so a fetch that adds a root is
 * seen at once by the walks of the same command (pull = fetch + merge).
 */
const sets = new Map<string, Set<string>>()

/** `.tilesync/shallow` for a store whose objects live in `objectsDir`. */
export function shallowFileOf(objectsDir: string): string {
  return path.join(path.dirname(objectsDir), 'shallow')
}

export function parseShallow(text: string): Set<string> {
  const out = new Set<string>()
  for (const line of text.split('\n')) {
    const id = line.trim()
    if (isObjectId(id)) out.add(id)
  }
  return out
}

export function formatShallow(ids: Iterable<string>): Buffer {
  const list = [...new Set(ids)].sort()
  return Buffer.from(list.length ? list.join('\n') + '\n' : '')
}

/** The shallow roots recorded in `file` (empty when it does not exist). */
export function loadShallow(file: string): Set<string> {
  let set = sets.get(file)
  if (!set) {
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      // no file: a complete history
    }
    set = parseShallow(text)
    sets.set(file, set)
  }
  return set
}

/** Records more shallow roots, before the commits themselves are stored. */
export async function addShallow(file: string, ids: Iterable<string>): Promise<void> {
  const set = loadShallow(file)
  const fresh = [...ids].filter((id) => !set.has(id))
  if (fresh.length === 0) return
  await writeFileAtomic(path.join(path.dirname(file), 'tmp'), file, formatShallow([...set, ...fresh]), true)
  for (const id of fresh) set.add(id)
}
