import type {BlobRef, NodeEntry, Row} from '../../snapshot/model.js'
import type {TreeReader} from '../../snapshot/tree-reader.js'

/**
 * The objects a set of commits adds on top of their parents, grouped in the order they
 * must be stored so that a crash never leaves a reference to a missing object: blobs,
 * then leaves, level-1 nodes, roots, tables, snapshots, and commits last (oldest first).
 */
export interface ObjectPlan {
  blobs: Map<string, number>
  leaves: Set<string>
  mids: Set<string>
  roots: Set<string>
  tables: Set<string>
  snapshots: Set<string>
  commits: string[]
}

export function emptyPlan(): ObjectPlan {
  return {blobs: new Map(), leaves: new Set(), mids: new Set(), roots: new Set(), tables: new Set(), snapshots: new Set(), commits: []}
}

export function planGroups(plan: ObjectPlan): string[][] {
  return [[...plan.blobs.keys()], [...plan.leaves], [...plan.mids], [...plan.roots], [...plan.tables], [...plan.snapshots], plan.commits]
}

export function planCount(plan: ObjectPlan): number {
  return planGroups(plan).reduce((s, g) => s + g.length, 0)
}

const blobIdsOf = (rows: Row[]): Array<[string, number]> => {
  const out: Array<[string, number]> = []
  for (const r of rows) for (let i = 0; i < r.types.length; i++) if (r.types[i] === 'b') out.push([(r.values[i] as BlobRef).id, (r.values[i] as BlobRef).size])
  return out
}

/**
 * Walks each commit's tree against its parents' trees, descending only where ids differ:
 * the work follows the size of the change, and nothing is asked of the other side.
 * `commits` must be newest first (as graph walks return them).
 */
export async function planCommits(reader: TreeReader, commits: string[]): Promise<ObjectPlan> {
  const plan = emptyPlan()
  plan.commits = [...commits].reverse()
  for (const id of commits) {
    const commit = await reader.commit(id)
    const parentSnaps = await Promise.all(commit.parents.map(async (p) => reader.snapshot((await reader.commit(p)).tree)))
    if (parentSnaps.length > 0 && (await Promise.all(commit.parents.map(async (p) => (await reader.commit(p)).tree))).includes(commit.tree)) continue
    plan.snapshots.add(commit.tree)
    const snap = await reader.snapshot(commit.tree)
    for (const t of snap.tables) {
      const parentTables = parentSnaps.flatMap((s) => s.tables.filter((pt) => pt.name === t.name).map((pt) => pt.id))
      if (parentTables.includes(t.id)) continue
      plan.tables.add(t.id)
      const table = await reader.table(t.id)
      const parentRoots = (await Promise.all(parentTables.map((pt) => reader.table(pt)))).map((pt) => pt.root).filter((r): r is string => r !== null)
      if (table.root) await planNode(reader, plan, table.root, parentRoots, 2)
    }
  }
  return plan
}

/**
 * Nodes already walked, with the parents they were walked against: a node walked against one
 * parent skipped what that parent has, so met again against another parent (a table that went
 * back to an earlier state: A, B, A) it is walked again, or what only the first parent had is
 * never planned.
 */
const walked = new WeakMap<ObjectPlan, Set<string>>()

async function planNode(reader: TreeReader, plan: ObjectPlan, id: string, parents: string[], level: 0 | 1 | 2): Promise<void> {
  if (parents.includes(id)) return
  const seen = level === 2 ? plan.roots : level === 1 ? plan.mids : plan.leaves
  let done = walked.get(plan)
  if (!done) walked.set(plan, done = new Set())
  const key = `${id} ${[...parents].sort().join(',')}`
  if (done.has(key) || done.has(`${id} `)) return
  done.add(key)
  seen.add(id)
  if (level === 0) {
    const parentBlobs = new Set<string>()
    for (const p of parents) for (const [b] of blobIdsOf(await reader.leafRows(p))) parentBlobs.add(b)
    for (const [b, size] of blobIdsOf(await reader.leafRows(id))) if (!parentBlobs.has(b)) plan.blobs.set(b, size)
    return
  }
  const parentEntries = new Map<string, string[]>()
  for (const p of parents) {
    for (const e of await reader.innerEntries(p)) parentEntries.set(e.label, [...(parentEntries.get(e.label) ?? []), e.id])
  }
  const entries: NodeEntry[] = await reader.innerEntries(id)
  for (const e of entries) await planNode(reader, plan, e.id, parentEntries.get(e.label) ?? [], (level - 1) as 0 | 1)
}
