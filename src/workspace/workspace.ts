import {type Db, openDatabase, translated, waitingForLock} from '../db/open-database.js'
import {randomBytes} from 'node:crypto'

import {changedKeys, installMarkers, installTracking, isTrackable, maxSeq, readTrackingState, recordedTables, resetBaseline, strayTrackedTables, triggersIntact, untrackTable} from '../db/change-tracking.js'
import {databaseUsers, describeUsers} from '../db/database-users.js'
import {assertIntact} from '../db/integrity.js'
import {IgnoreRules} from '../snapshot/ignore-rules.js'
import {readSchema} from '../db/introspect.js'
import {refuseUnsupportedShapes} from '../db/shapes.js'
import {fileChangeCounter, type OutsideWrites, outsideWritesSince} from '../db/outside-writes.js'
import {sameVersionedSchema} from '../snapshot/versioned-schema.js'
import {type IncrementalBase, readDetector, type ScanMoment, ScanMoved, snapshotDatabase, type SnapshotResult} from '../db/snapshot-database.js'
import {inTransaction} from '../db/transactions.js'
import {resolveTableSpecs, type TableSpec} from '../db/table-spec.js'
import {resolveRevision} from '../history/revisions.js'
import {Repository} from '../repo/repository.js'
import type {TableTree} from '../snapshot/model.js'
import {EMPTY_STATE, type TreeState} from '../snapshot/tree-state.js'
import {TreeReader} from '../snapshot/tree-reader.js'
import {HashingPool} from '../store/hashing-pool.js'
import {hashOnlyWriter, OverlayStore} from '../store/overlay-store.js'
import type {Progress} from '../util/progress.js'
import {carryOutsideRegion} from './outside-region.js'

/**
 * What most commands start from: the repository, a tree reader over its store, and ways to
 * read the working database and revisions as tree states.
 */
export class Workspace {
  readonly reader: TreeReader

  constructor(readonly repo: Repository) {
    this.reader = new TreeReader(repo.store, undefined, repo.shallow)
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

  /** The tables and columns `.tilesync/config.json` leaves out of versioning. */
  ignoreRules(): IgnoreRules {
    return new IgnoreRules(this.repo.config.ignore ?? [])
  }

  resolve(revision: string): Promise<string> {
    return resolveRevision(this.repo, this.reader, revision)
  }

  async stateOf(commitId: string | null): Promise<TreeState> {
    if (!commitId) return EMPTY_STATE
    const {commit, snapshot, tables, tableIds} = await this.reader.tablesOf(commitId)
    return {snapshotId: commit.tree, snapshot, tables, tableIds, ignore: this.ignoreRules()}
  }

  async headState(): Promise<{id: string | null; state: TreeState}> {
    const id = await this.repo.refs.headCommit()
    return {id, state: await this.stateOf(id)}
  }

  /**
   * Reads the working database as a tree state. With `store: true` the blobs and nodes are
   * written to the object store (commit, checkout's safety copy); otherwise they are only
   * hashed and kept in memory (status, diff). When change tracking can be trusted, only the
   * rows changed since its baseline are read; otherwise (or with `rescan`) every row is.
   *
   * Inside the caller's transaction (a merge, an import) the scan is that transaction's
   * moment. Otherwise it holds no lock for long: it reads a step at a time and fixes the
   * snapshot to one moment with the change record (see db/snapshot-database.ts), so a
   * pipeline writing the database meanwhile neither waits nor fails. Should the schema change
   * under it three times in a row, the fourth attempt reads in one transaction.
   */
  async scan(db: Db, options: ScanOptions): Promise<ScanResult> {
    if (db.inTransaction) return this.scanOnce(db, options, false)
    // How tilesync read before it read in steps, kept for `npm run bench` to compare with.
    if (process.env.TILESYNC_SCAN_IN_ONE_TRANSACTION === '1') return inTransaction(db, 'read', () => this.scanOnce(db, options, false))
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        return await this.scanOnce(db, options, true)
      } catch (error) {
        if (!(error instanceof ScanMoved)) throw error
        if (attempt === 3) {
          const result = await inTransaction(db, 'read', () => this.scanOnce(db, options, false))
          result.notes.push(`the database was read inside one read transaction (writers waited): ${error.message}, three times in a row`)
          return result
        }
      }
    }
    throw new Error('unreachable')
  }

  private async scanOnce(db: Db, options: ScanOptions, stepped: boolean): Promise<ScanResult> {
    const notes: string[] = []
    // The first read waits (visibly) while another program holds the database.
    if (!db.inTransaction) translated(db, () => waitingForLock(db, () => db.prepare('SELECT count(*) FROM sqlite_master').get()))
    // What the scan starts from, in one short read transaction (or the caller's).
    const start = await inTransaction(db, 'read', async () => {
      const specs = this.specs(db)
      refuseUnsupportedShapes(db, specs)
      const tracking = await this.trackingBase(db, specs, options)
      return {specs, tracking, moment: stepped ? momentOf(db, specs, tracking.upTo, options) : undefined, counter: fileChangeCounter(db)}
    })
    const {specs, tracking, moment} = start
    // A full rescan asked for is a full check too: damage outside the rows read would stay
    // unseen. SQLite's check reads the whole file in one statement, which would hold every
    // writer for its duration: beside another program using the database it is left to
    // `tilesync fsck`, and the scan says so.
    if (options.rescan) {
      const others = stepped ? databaseUsers(db.name) : []
      if (others.length === 0) assertIntact(db)
      else notes.push(`SQLite's integrity check was skipped: the database is open in ${describeUsers(others)}; run \`tilesync fsck\` when it is idle`)
    }
    const overlay = options.store ? undefined : new OverlayStore(this.repo.store)
    const reader = overlay ? new TreeReader(overlay) : this.reader
    let bytes = 0
    // A full read hashes on every core; a few changed rows are cheaper inline.
    const pool = tracking.base ? undefined : new HashingPool(this.repo.store, options.store ? 'store' : 'hash', {packed: true})
    let result: SnapshotResult
    try {
      result = await snapshotDatabase(db, specs, this.repo.config.tileTable, {
        trees: overlay ?? this.repo.store,
        blobs: pool ?? (options.store ? this.repo.store : hashOnlyWriter),
        reader,
        onRow: (b) => {
          bytes += b
          options.progress?.increment(1)
        },
      }, tracking.base, moment)
    } finally {
      await pool?.close()
    }
    if (result.heldLock.length) notes.push(`${result.heldLock.map((t) => `"${t}"`).join(', ')} ${result.heldLock.length === 1 ? 'was' : 'were'} read inside one read transaction (writers waited): another program kept writing ${result.heldLock.length === 1 ? 'it' : 'them'} and the change record does not follow ${result.heldLock.length === 1 ? 'it' : 'them'} (${this.repo.config.tracking?.enabled === false ? 'change tracking is off: `tilesync tracking on`' : 'give the table a PRIMARY KEY'})`)
    let state: TreeState = {snapshotId: result.id, snapshot: result.snapshot, tables: result.tables, tableIds: result.tableIds, ignore: this.ignoreRules()}
    const partial = this.repo.partial
    if (partial) state = await carryOutsideRegion(state, (await this.headState()).state, partial.bbox, {reader, store: overlay ?? this.repo.store})
    return {
      state,
      reader, bytes, notes,
      tracking: {installed: tracking.installed, used: tracking.base !== undefined, upTo: result.upTo ?? tracking.upTo, reason: tracking.reason, counter: result.counter !== undefined ? result.counter : start.counter, outside: tracking.outside},
    }
  }

  /** Decides whether the change record can stand in for a full read, and why not if it cannot. */
  private async trackingBase(db: Db, specs: TableSpec[], options: ScanOptions): Promise<{installed: boolean; upTo: number; base?: IncrementalBase; reason: string; outside: OutsideWrites}> {
    const state = readTrackingState(db)
    if (!state.installed) return {installed: false, upTo: 0, reason: 'change tracking is not installed', outside: 'unavailable'}
    const upTo = maxSeq(db)
    const outside = outsideWritesSince(db, state, upTo)
    const expectedId = this.repo.config.tracking?.id
    const no = (reason: string): {installed: boolean; upTo: number; reason: string; outside: OutsideWrites} => ({installed: true, upTo, reason, outside})
    if (options.rescan) return no('full rescan requested')
    if (!expectedId || state.trackingId !== expectedId) return no('the database was tracked by another repository')
    if (!state.baseline || !(await this.repo.store.has(state.baseline))) return no('no baseline snapshot yet')
    if (!triggersIntact(db, specs)) return no('tracking triggers are missing or were changed')
    if (outside === 'detected' && options.outside !== 'report') return no('the database file was written outside the change record (e.g. incremental blob I/O)')
    const baseline = await this.reader.snapshot(state.baseline)
    // Only the versioned schema counts: the app altering an ignored table (or adding an ignored
    // column) leaves every recorded change valid.
    if (!sameVersionedSchema(baseline.schema, readSchema(db), this.ignoreRules())) return no('the schema changed since the baseline')
    const tables = new Map<string, TableTree>()
    for (const t of baseline.tables) tables.set(t.name, await this.reader.table(t.id))
    // Tables about to be replaced whole (checkout across a schema change) are read in full, so
    // every row they lose is known to be what the snapshot says.
    const tracked = new Set(specs.filter((s) => isTrackable(db, s) && !options.fullTables?.has(s.name)).map((s) => s.name))
    return {installed: true, upTo, base: {tables, changed: changedKeys(db, upTo), tracked}, reason: 'using the change record', outside}
  }

  /** Installs or repairs tracking when it is enabled and not intact. Returns whether it is in place. */
  async ensureTracking(db: Db): Promise<boolean> {
    if (this.repo.config.tracking?.enabled === false || db.readonly) return false
    const specs = this.specs(db)
    const state = readTrackingState(db)
    let id = this.repo.config.tracking?.id
    // A table left out of versioning loses its triggers (and its recorded keys).
    if (state.installed) for (const t of strayTrackedTables(db, specs)) untrackTable(db, t)
    // ... and gets the triggers that only count its writes (nothing recorded, nothing reset).
    if (state.installed && id && state.trackingId === id) installMarkers(db, specs)
    if (state.installed && id && state.trackingId === id && triggersIntact(db, specs)) return true
    if (!id) {
      id = randomBytes(8).toString('hex')
      this.repo.config.tracking = {enabled: true, id}
      await this.repo.writeConfig()
    }
    installTracking(db, specs, id)
    return true
  }
}

export interface ScanOptions {
  store: boolean
  progress?: Progress
  rescan?: boolean
  fullTables?: ReadonlySet<string>
  outside?: 'rescan' | 'report'
  /** Called between the short read transactions of a stepped scan (tests write the database there). */
  between?: ScanMoment['between']
  limits?: ScanMoment['limits']
}

/** Where a stepped scan starts from: read inside the short transaction that decided how to read. */
function momentOf(db: Db, specs: TableSpec[], upTo: number, options: ScanOptions): ScanMoment {
  const installed = readTrackingState(db).installed
  // The counting triggers explain writes to the other tables only when all of them are there.
  const detector = installed && triggersIntact(db, specs) ? 'other_writes' : 'data_version'
  return {
    seq: upTo,
    schemaVersion: Number(db.pragma('schema_version', {simple: true})),
    recorded: recordedTables(db, specs),
    detector,
    detectorValue: readDetector(db, detector),
    counter: fileChangeCounter(db),
    otherWrites: installed ? readDetector(db, 'other_writes') : null,
    between: options.between,
    limits: options.limits,
  }
}

export interface ScanResult {
  state: TreeState
  reader: TreeReader
  bytes: number
  /** What the user should know about how the database was read (an integrity check skipped, a table read under a lock). */
  notes: string[]
  /**
   * `counter`: the file change counter the scan saw; `outside`: whether the file was written
   * outside the change record since the baseline (see db/outside-writes.ts).
   */
  tracking: {installed: boolean; used: boolean; upTo: number; reason: string; counter: number | null; outside: OutsideWrites}
}

/**
 * Records that the database now equals `snapshotId` apart from changes after `upTo`; `observed`
 * is the file change counter the scan saw, when it ran in an earlier transaction.
 */
export function markBaseline(db: Db, snapshotId: string, upTo: number, observed?: number | null): void {
  if (readTrackingState(db).installed && !db.readonly) resetBaseline(db, snapshotId, upTo, observed)
}

export function rowCountOf(db: Db, specs: TableSpec[]): number {
  let n = 0
  for (const s of specs) n += Number((db.prepare(`SELECT count(*) AS n FROM "${s.name.replaceAll('"', '""')}"`).get() as {n: number}).n)
  return n
}
