import type {ObjectReader} from '../store/object-store.js'
import {type Commit, decodeCommit, decodeNode, decodeSnapshot, decodeTable, type NodeEntry, type Row, type Snapshot, type TableTree, type TreeNode} from './model.js'
import {labelBounds} from './rows.js'

export type BBox = [number, number, number, number]

export function boxesOverlap(a: BBox, b: BBox): boolean {
  return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

/**
 * Decodes stored objects with a small cache: walks revisit the same root and level-1
 * nodes many times, and decoding is cheaper than reading and re-hashing a file.
 */
export class TreeReader {
  private readonly cache = new Map<string, unknown>()

  /**
   * `shallow`: commits whose history was cut by a prune (see repo/shallow.ts). Their parents
   * that are not in the store are left out, so every history walk ends there gracefully.
   */
  constructor(readonly objects: ObjectReader, private readonly cacheLimit = 4096, private readonly shallow?: ReadonlySet<string>) {}

  async commit(id: string): Promise<Commit> {
    const commit = await this.cached(id, decodeCommit)
    if (!this.shallow?.has(id) || commit.parents.length === 0) return commit
    const present: string[] = []
    for (const p of commit.parents) if (await this.objects.has(p)) present.push(p)
    return present.length === commit.parents.length ? commit : {...commit, parents: present}
  }

  snapshot(id: string): Promise<Snapshot> { return this.cached(id, decodeSnapshot) }
  table(id: string): Promise<TableTree> { return this.cached(id, decodeTable) }
  node(id: string): Promise<TreeNode> { return this.cached(id, decodeNode) }

  async innerEntries(id: string | null): Promise<NodeEntry[]> {
    if (id === null) return []
    const node = await this.node(id)
    return node.level === 0 ? [] : node.entries
  }

  async leafRows(id: string): Promise<Row[]> {
    const node = await this.node(id)
    return node.level === 0 ? node.rows : []
  }

  /** Every row of a table in leaf order; with `bbox`, only leaves that can overlap it. */
  async *rows(table: TableTree, bbox?: BBox): AsyncGenerator<Row> {
    for (const mid of await this.innerEntries(table.root)) {
      if (bbox && !overlapsLabel(mid.label, 2, bbox)) continue
      for (const leaf of await this.innerEntries(mid.id)) {
        if (bbox && !overlapsLabel(leaf.label, 1, bbox)) continue
        yield* await this.leafRows(leaf.id)
      }
    }
  }

  /** The tables of a commit, by name. */
  async tablesOf(commitId: string): Promise<{commit: Commit; snapshot: Snapshot; tables: Map<string, TableTree>; tableIds: Map<string, string>}> {
    const commit = await this.commit(commitId)
    const snapshot = await this.snapshot(commit.tree)
    const tables = new Map<string, TableTree>()
    const tableIds = new Map<string, string>()
    for (const t of snapshot.tables) {
      tables.set(t.name, await this.table(t.id))
      tableIds.set(t.name, t.id)
    }
    return {commit, snapshot, tables, tableIds}
  }

  private async cached<T>(id: string, decodeFn: (b: Uint8Array) => T): Promise<T> {
    const hit = this.cache.get(id)
    if (hit !== undefined) return hit as T
    const value = decodeFn(await this.objects.get(id))
    if (this.cache.size >= this.cacheLimit) this.cache.delete(this.cache.keys().next().value as string)
    this.cache.set(id, value)
    return value
  }
}

export function overlapsLabel(label: string, level: 1 | 2, bbox: BBox): boolean {
  const b = labelBounds(label, level)
  return b === null || boxesOverlap(b, bbox)
}
