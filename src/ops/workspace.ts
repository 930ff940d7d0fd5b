import {type Db, openDatabase} from '../db/open-database.js'
import {snapshotDatabase, type SnapshotResult} from '../db/snapshot-database.js'
import {resolveTableSpecs, type TableSpec} from '../db/table-spec.js'
import {resolveRevision} from '../history/revisions.js'
import {Repository} from '../repo/repository.js'
import type {Snapshot, TableTree} from '../snapshot/model.js'
import {TreeReader} from '../snapshot/tree-reader.js'
import {hashOnlyWriter, OverlayStore} from '../store/overlay-store.js'
import type {Progress} from '../util/progress.js'

/** A snapshot's tables, whether from a commit or from the working database. */
export interface TreeState {
  snapshotId: string
  snapshot: Snapshot
  tables: Map<string, TableTree>
  tableIds: Map<string, string>
}

export const EMPTY_STATE: TreeState = {snapshotId: '', snapshot: {schema: [], tables: [], tileTable: null}, tables: new Map(), tableIds: new Map()}

/**
 * What most commands start from: the repository, a tree reader over its store, and ways to
 * read the working database and revisions as tree states.
 */
export class Workspace {
  readonly reader: TreeReader

  constructor(readonly repo: Repository) {
    this.reader = new TreeReader(repo.store)
  }

  static async open(cwd?: string): Promise<Workspace> {
    return new Workspace(await Repository.find(cwd))
  }

  openDb(readonly = true): Db {
    return openDatabase(this.repo.databasePath, {readonly})
  }

  specs(db: Db): TableSpec[] {
    return resolveTableSpecs(db, this.repo.config)
  }

  resolve(revision: string): Promise<string> {
    return resolveRevision(this.repo, this.reader, revision)
  }

  async stateOf(commitId: string | null): Promise<TreeState> {
    if (!commitId) return EMPTY_STATE
    const {commit, snapshot, tables, tableIds} = await this.reader.tablesOf(commitId)
    return {snapshotId: commit.tree, snapshot, tables, tableIds}
  }

  async headState(): Promise<{id: string | null; state: TreeState}> {
    const id = await this.repo.refs.headCommit()
    return {id, state: await this.stateOf(id)}
  }

  /**
   * Reads the working database as a tree state. With `store: true` the blobs and nodes are
   * written to the object store (commit, checkout's safety copy); otherwise they are only
   * hashed and kept in memory (status, diff).
   */
  async scan(db: Db, options: {store: boolean; progress?: Progress}): Promise<{state: TreeState; reader: TreeReader; bytes: number}> {
    const specs = this.specs(db)
    const overlay = options.store ? undefined : new OverlayStore(this.repo.store)
    const reader = overlay ? new TreeReader(overlay) : this.reader
    let bytes = 0
    const result: SnapshotResult = await snapshotDatabase(db, specs, this.repo.config.tileTable, {
      trees: overlay ?? this.repo.store,
      blobs: options.store ? this.repo.store : hashOnlyWriter,
      reader,
      onRow: (b) => {
        bytes += b
        options.progress?.increment(1)
      },
    })
    return {state: {snapshotId: result.id, snapshot: result.snapshot, tables: result.tables, tableIds: result.tableIds}, reader, bytes}
  }
}

export function sameTables(a: TreeState, b: TreeState): boolean {
  if (a.snapshotId && a.snapshotId === b.snapshotId) return true
  if (a.tableIds.size !== b.tableIds.size) return false
  for (const [name, id] of a.tableIds) if (b.tableIds.get(name) !== id) return false
  return JSON.stringify(a.snapshot.schema) === JSON.stringify(b.snapshot.schema)
}

export function rowCountOf(db: Db, specs: TableSpec[]): number {
  let n = 0
  for (const s of specs) n += Number((db.prepare(`SELECT count(*) AS n FROM "${s.name.replaceAll('"', '""')}"`).get() as {n: number}).n)
  return n
}
