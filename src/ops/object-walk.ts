import pLimit from 'p-limit'

import {TilesyncError} from '../core/errors.js'
import {hashBytes} from '../core/hash.js'
import {type BlobRef, type Commit, decodeCommit, decodeNode, decodeSnapshot, decodeTable, type TableTree} from '../snapshot/model.js'
import {displayKey, tileXY} from '../snapshot/rows.js'

export type ObjectKind = 'commit' | 'snapshot' | 'table' | 'node' | 'blob'

/** Where objects are read from: raw bytes, null when absent. The walk verifies them itself. */
export interface RawSource {
  read(id: string): Promise<Buffer | null>
}

/** What refers to an object, so a problem can be told in terms people know (tile, layer, commit). */
export interface Context {
  commit: string
  table?: TableTree
  /** e.g. "tile 3,4 render" or "row 12 of table metadata". */
  what?: string
}

export interface ObjectProblem {
  kind: 'missing' | 'corrupt' | 'malformed'
  id: string
  objectKind: ObjectKind
  /** Plain words: "object 1a2b… (tile 3,4 render at commit 9f8e…) is missing". */
  message: string
  commit: string
}

export const short = (id: string): string => id.slice(0, 10)

export function describe(kind: ObjectKind, id: string, ctx: Context): string {
  const at = `at commit ${short(ctx.commit)}`
  switch (kind) {
    case 'commit': return `commit ${short(id)}`
    case 'snapshot': return `snapshot ${short(id)} (of commit ${short(ctx.commit)})`
    case 'table': return `table tree ${short(id)} (${ctx.what ?? 'a table'} ${at})`
    case 'node': return `tree node ${short(id)} (${ctx.what ?? 'a table'} ${at})`
    case 'blob': return `object ${short(id)} (${ctx.what ?? 'a blob'} ${at})`
  }
}

/**
 * Checks everything reachable from commits: each object is read once, its bytes hashed
 * against its id and decoded as the kind its parent says it is. `treeOk` answers whether
 * a commit's snapshot is complete (every object present and sound); results are memoised,
 * so commits that share most of their tree cost only their differences.
 */
export class ObjectWalk {
  readonly problems: ObjectProblem[] = []
  /** Every object read, with whether it (and what it refers to) is sound. */
  private readonly memo = new Map<string, Promise<boolean>>()
  private readonly commits = new Map<string, Promise<Commit | null>>()
  private readonly limit: ReturnType<typeof pLimit>
  objects = 0
  bytes = 0
  /**
   * Blobs absent by design (a partial clone leaves images on its origin): counted here
   * instead of reported missing, when `promisedBlobs` is set.
   */
  promised = 0
  promisedBlobs = false
  private readonly promisedIds = new Set<string>()

  constructor(private readonly source: RawSource, private readonly hash: (bytes: Buffer) => Promise<string> = async (b) => hashBytes(b), concurrency = 16) {
    this.limit = pLimit(concurrency)
  }

  has(id: string): boolean {
    return this.memo.has(id) || this.commits.has(id)
  }

  /** Whether an object is present at all (not read into the walk). */
  async exists(id: string): Promise<boolean> {
    return (await this.limit(() => this.source.read(id))) !== null
  }

  /** Ids read so far (reachable from what was walked). */
  visited(): Set<string> {
    return new Set([...this.memo.keys(), ...this.commits.keys()])
  }

  /** Reads a commit once; null (with a problem recorded) when missing, corrupt or not a commit. */
  commit(id: string, problems: ObjectProblem[] = this.problems): Promise<Commit | null> {
    let p = this.commits.get(id)
    if (!p) {
      p = this.load(id, 'commit', {commit: id}, problems).then((bytes) => {
        if (!bytes) return null
        try {
          return decodeCommit(bytes)
        } catch (error) {
          problems.push(this.malformed(id, 'commit', {commit: id}, error))
          return null
        }
      })
      this.commits.set(id, p)
    }
    return p
  }

  /** Whether a commit and its whole snapshot are present and sound. */
  async complete(id: string, problems: ObjectProblem[] = this.problems): Promise<boolean> {
    const c = await this.commit(id, problems)
    if (!c) return false
    return this.visit(c.tree, 'snapshot', {commit: id}, problems)
  }

  private visit(id: string, kind: Exclude<ObjectKind, 'commit'>, ctx: Context, problems: ObjectProblem[]): Promise<boolean> {
    let p = this.memo.get(id)
    if (!p) {
      p = this.check(id, kind, ctx, problems)
      this.memo.set(id, p)
    }
    return p
  }

  private async check(id: string, kind: Exclude<ObjectKind, 'commit'>, ctx: Context, problems: ObjectProblem[]): Promise<boolean> {
    const bytes = await this.load(id, kind, ctx, problems)
    if (!bytes) return false
    if (kind === 'blob') return true
    let children: Array<{id: string; kind: Exclude<ObjectKind, 'commit'>; ctx: Context}>
    try {
      children = this.childrenOf(kind, bytes, ctx)
    } catch (error) {
      problems.push(this.malformed(id, kind, ctx, error))
      return false
    }
    const results = await Promise.all(children.map((c) => this.visit(c.id, c.kind, c.ctx, problems)))
    return results.every(Boolean)
  }

  private childrenOf(kind: 'snapshot' | 'table' | 'node', bytes: Buffer, ctx: Context): Array<{id: string; kind: Exclude<ObjectKind, 'commit'>; ctx: Context}> {
    if (kind === 'snapshot') {
      return decodeSnapshot(bytes).tables.map((t) => ({id: t.id, kind: 'table' as const, ctx: {commit: ctx.commit, what: `table ${t.name}`}}))
    }
    if (kind === 'table') {
      const table = decodeTable(bytes)
      return table.root ? [{id: table.root, kind: 'node', ctx: {commit: ctx.commit, table, what: `table ${table.name}`}}] : []
    }
    const node = decodeNode(bytes)
    if (node.level > 0) return (node as {entries: Array<{id: string}>}).entries.map((e) => ({id: e.id, kind: 'node' as const, ctx}))
    const out: Array<{id: string; kind: 'blob'; ctx: Context}> = []
    const table = ctx.table
    for (const row of (node as {rows: import('../snapshot/model.js').Row[]}).rows) {
      for (let i = 0; i < row.types.length; i++) {
        if (row.types[i] !== 'b') continue
        let what = 'a blob'
        if (table) {
          const column = table.columns[i]?.name ?? `column ${i}`
          const xy = tileXY(row, table.partition)
          what = xy ? `tile ${xy[0]},${xy[1]} ${column}` : `${column} of row ${displayKey(row, table.key)} in table ${table.name}`
        }
        out.push({id: (row.values[i] as BlobRef).id, kind: 'blob', ctx: {commit: ctx.commit, what}})
      }
    }
    return out
  }

  private async load(id: string, kind: ObjectKind, ctx: Context, problems: ObjectProblem[]): Promise<Buffer | null> {
    const bytes = await this.limit(() => this.source.read(id))
    if (bytes === null && kind === 'blob' && this.promisedBlobs) {
      if (!this.promisedIds.has(id)) this.promised++
      this.promisedIds.add(id)
      return Buffer.alloc(0)
    }
    if (bytes === null) {
      problems.push({kind: 'missing', id, objectKind: kind, commit: ctx.commit, message: `${describe(kind, id, ctx)} is missing`})
      return null
    }
    this.objects++
    this.bytes += bytes.length
    const size = bytes.length
    const actual = await this.hash(kind === 'blob' ? bytes : Buffer.from(bytes))
    if (actual !== id) {
      problems.push({kind: 'corrupt', id, objectKind: kind, commit: ctx.commit, message: `${describe(kind, id, ctx)} is corrupt (${size} bytes hashing to ${short(actual)})`})
      return null
    }
    return kind === 'blob' ? Buffer.alloc(0) : bytes
  }

  private malformed(id: string, kind: ObjectKind, ctx: Context, error: unknown): ObjectProblem {
    const why = error instanceof TilesyncError ? error.message : String((error as Error).message ?? error)
    return {kind: 'malformed', id, objectKind: kind, commit: ctx.commit, message: `${describe(kind, id, ctx)} does not decode as a ${kind === 'node' ? 'tree node' : kind} (${why})`}
  }
}
