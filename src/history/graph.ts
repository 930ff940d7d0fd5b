import type {TreeReader} from '../snapshot/tree-reader.js'

/** All ancestors of `start` (inclusive), breadth first. */
export async function ancestors(reader: TreeReader, start: string, stopAt?: Set<string>): Promise<Set<string>> {
  const seen = new Set<string>()
  const queue = [start]
  while (queue.length > 0) {
    const id = queue.shift()!
    if (seen.has(id) || stopAt?.has(id)) continue
    seen.add(id)
    queue.push(...(await reader.commit(id)).parents)
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

/** Commits reachable from `tip` but not from any of `exclude`, newest first (tip first). */
export async function commitsNotIn(reader: TreeReader, tip: string, exclude: Iterable<string>): Promise<string[]> {
  const excluded = new Set<string>()
  for (const e of exclude) for (const id of await ancestors(reader, e)) excluded.add(id)
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
