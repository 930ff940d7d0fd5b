import type {TreeReader} from '../snapshot/tree-reader.js'

/**
 * All ancestors of `start` (inclusive), breadth first. Commits in `stopAt` are left out;
 * commits in `boundary` are included but their parents are not followed.
 */
export async function ancestors(reader: TreeReader, start: string, stopAt?: Set<string>, boundary?: ReadonlySet<string>): Promise<Set<string>> {
  const seen = new Set<string>()
  const queue = [start]
  while (queue.length > 0) {
    const id = queue.shift()!
    if (seen.has(id) || stopAt?.has(id)) continue
    seen.add(id)
    if (!boundary?.has(id)) queue.push(...(await reader.commit(id)).parents)
  }
  return seen
}

export async function isAncestor(reader: TreeReader, ancestor: string, descendant: string): Promise<boolean> {
  if (ancestor === descendant) return true
  const seen = new Set<string>()
  const queue = [descendant]
  while (queue.length > 0) {
    const id = queue.shift()!
    if (id === ancestor) return true
    if (seen.has(id)) continue
    seen.add(id)
    queue.push(...(await reader.commit(id)).parents)
  }
  return false
}

/** The best common ancestor of two commits: a common ancestor nearest to `a` that no other common ancestor descends from. */
export async function mergeBase(reader: TreeReader, a: string, b: string): Promise<string | null> {
  const ofB = await ancestors(reader, b)
  const seen = new Set<string>()
  const queue = [a]
  while (queue.length > 0) {
    const id = queue.shift()!
    if (seen.has(id)) continue
    seen.add(id)
    if (ofB.has(id)) return id
    queue.push(...(await reader.commit(id)).parents)
  }
  return null
}

/**
 * Commits reachable from `tip` but not from any of `exclude`, newest first (tip first).
 * `boundary`: where the history of `exclude` ends on the other side (the shallow roots of a
 * pruned remote): commits below them count as missing there, so they are included.
 */
export async function commitsNotIn(reader: TreeReader, tip: string, exclude: Iterable<string>, boundary?: ReadonlySet<string>): Promise<string[]> {
  const excluded = new Set<string>()
  for (const e of exclude) for (const id of await ancestors(reader, e, undefined, boundary)) excluded.add(id)
  const out: string[] = []
  const seen = new Set<string>()
  const queue = [tip]
  while (queue.length > 0) {
    const id = queue.shift()!
    if (seen.has(id) || excluded.has(id)) continue
    seen.add(id)
    out.push(id)
    queue.push(...(await reader.commit(id)).parents)
  }
  return out
}
