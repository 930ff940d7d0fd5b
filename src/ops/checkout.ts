import {existsSync} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import {applyToDatabase, type ApplyResult} from '../db/apply-snapshot.js'
import type {Head} from '../repo/refs.js'
import {tileXY} from '../snapshot/rows.js'
import type {BBox, TreeReader} from '../snapshot/tree-reader.js'
import {createProgress} from '../util/progress.js'
import {computeChangeSet, ignoreOf, rawChanges, type RawChanges} from '../snapshot/change-set.js'
import {sameVersionedSchema} from '../snapshot/versioned-schema.js'
import {advanceCounter, maxSeq, readTrackingState} from '../db/change-tracking.js'
import {firstUnexpectedRow, tablesReplacedWhole} from '../db/verify-rows.js'
import type {Db} from '../db/open-database.js'
import {databaseUsers, type DatabaseUser} from '../db/database-users.js'
import {inTransaction} from '../db/transactions.js'
import {previewApply} from './apply-preview.js'
import {changesInRegion, partialTables} from '../workspace/outside-region.js'
import {saveWorking} from '../workspace/save-working.js'
import {markBaseline, type ScanResult, Workspace} from '../workspace/workspace.js'
import {sameTables, type TreeState} from '../snapshot/tree-state.js'
import {writeNewDatabase} from './write-new-database.js'

export interface CheckoutOptions {
  revision: string
  force?: boolean
  tiles?: Array<[number, number]>
  bbox?: BBox
  /** Report what would be written (the same counts), writing nothing: not the database, the store or HEAD. */
  dryRun?: boolean
  /** Told, before anything is written, which other processes have the database open. */
  onInUse?: (users: DatabaseUser[]) => void
}

export interface CheckoutResult {
  target: string
  head: string
  detached: boolean
  partial: boolean
  rowsWritten: number
  rowsDeleted: number
  tilesChanged: number
  /** Commit holding the uncommitted changes that --force overwrote, if any. */
  savedAs: string | null
  /** Set by a dry run: nothing was written; `wouldSave` when --force would first save uncommitted changes. */
  dryRun?: boolean
  wouldSave?: boolean
  /** Other processes that had the database open when the checkout began (a running pipeline). */
  inUse?: DatabaseUser[]
}

export function parseTile(text: string): [number, number] {
  const m = /^\s*(-?\d+)\s*,\s*(-?\d+)\s*$/.exec(text)
  if (!m) throw new TilesyncError('BAD_ARGUMENT', `--tile must be X,Y (integers), got "${text}"`, {hint: 'e.g. --tile 12,-3'})
  return [Number(m[1]), Number(m[2])]
}

function boxOf(tiles: Array<[number, number]>): BBox {
  const xs = tiles.map((t) => t[0])
  const ys = tiles.map((t) => t[1])
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)]
}

/** Keeps only the changes to the listed tiles. */
function onlyTiles(changes: RawChanges, tiles: Array<[number, number]>): RawChanges {
  const wanted = new Set(tiles.map(([x, y]) => `${x},${y}`))
  const out: RawChanges = new Map()
  for (const [name, entry] of changes) {
    const shape = (entry.after ?? entry.before)!
    out.set(name, {...entry, changes: entry.changes.filter((c) => {
      const xy = tileXY((c.new ?? c.old)!, shape.partition)
      return xy !== null && wanted.has(`${xy[0]},${xy[1]}`)
    })})
  }
  return out
}

const count = (c: RawChanges): number => [...c.values()].reduce((s, e) => s + e.changes.length, 0)

/** What every checkout starts from: no merge in progress, the target and HEAD as tree states. */
async function prepareCheckout(ws: Workspace, options: CheckoutOptions): Promise<{targetId: string; target: TreeState; headId: string | null; headState: TreeState; bbox?: BBox}> {
  if (existsSync(ws.repo.layout.mergeState)) {
    throw new TilesyncError('MERGE_IN_PROGRESS', 'a merge is in progress', {hint: 'finish it with `tilesync merge --ours|--theirs` or run `tilesync merge --abort`'})
  }
  const targetId = await ws.resolve(options.revision)
  const target = await ws.stateOf(targetId)
  const {id: headId, state: headState} = await ws.headState()
  return {targetId, target, headId, headState, bbox: options.tiles?.length ? boxOf(options.tiles) : options.bbox}
}

/**
 * Makes the database equal to a revision (or restores some tiles of it). Refuses to
 * overwrite uncommitted changes unless forced; when forced, those changes are first saved
 * as a commit on `refs/saved` so nothing is lost.
 */
export async function checkout(ws: Workspace, options: CheckoutOptions): Promise<CheckoutResult> {
  const partial = Boolean(options.tiles?.length || options.bbox)
  if (options.dryRun) return previewCheckout(ws, options, partial)
  return ws.repo.withLock('checkout', async () => {
    const {targetId, target, headId, headState, bbox} = await prepareCheckout(ws, options)
    const inUse = databaseUsers(ws.repo.databasePath)
    if (inUse.length) options.onInUse?.(inUse)
    const db = ws.openDb(false)
    try {
      await ws.ensureTracking(db)
      const ctx = {targetId, target, headId, headState, bbox, partial}
      const whole = partial ? new Set<string>() : tablesReplacedWhole(db, target.snapshot.schema)
      let outcome: {result: CheckoutResult; head: Head | null} | null = null
      if (whole.size === 0) {
        // The scan holds no lock (a pipeline keeps writing meanwhile); the write transaction
        // holds the lock only for the rows written, and first checks each of them is still
        // what the plan was made from. A row changed meanwhile means scanning again.
        for (let attempt = 1; attempt <= STEPPED_ATTEMPTS && !outcome; attempt++) {
          const assessed = await scanAndAssess(ws, db, options, ctx, true, {verify: false})
          outcome = await inTransaction(db, 'write', async () => {
            if (await firstUnexpectedRow(db, assessed.changes, assessed.working.reader.objects) !== null) return null
            return writeCheckout(ws, db, options, ctx, assessed, assessed.working.tracking.upTo)
          })
        }
      }
      // Tables replaced whole (a checkout across a schema change) are read and rewritten in
      // one write transaction: every row they hold is about to go, so none may slip in. So is
      // everything when the pipeline kept rewriting the very rows the checkout overwrites (the
      // scan from the record is short; the blobs read before are stored already).
      outcome ??= await inTransaction(db, 'write', async () => writeCheckout(ws, db, options, ctx, await scanAndAssess(ws, db, options, ctx, true), null))
      // HEAD moves only once the database holds the target. After a crash in between, the
      // database equals the target and HEAD is behind; the same checkout run again finds
      // nothing to overwrite and just moves HEAD.
      if (outcome.head) await ws.repo.refs.setHead(outcome.head, `checkout: moving to ${options.revision}`)
      return {...outcome.result, inUse}
    } finally {
      db.close()
    }
  })
}

/** How many times a checkout scans outside its write transaction before it scans inside it. */
const STEPPED_ATTEMPTS = 2

/**
 * What a checkout would write, and whether it would overwrite uncommitted changes (refused
 * with DIRTY unless forced). Shared by the real checkout and --dry-run.
 */
async function assessCheckout(reader: TreeReader, working: TreeState, options: CheckoutOptions, ctx: {target: TreeState; headId: string | null; headState: TreeState; bbox?: BBox; partial: boolean}): Promise<{changes: RawChanges; dirty: boolean}> {
  const {target, headId, headState, bbox, partial} = ctx
  let pending = await rawChanges(headState, working, reader, {bbox})
  if (options.tiles?.length) pending = onlyTiles(pending, options.tiles)
  let changes = await rawChanges(working, target, reader, {bbox})
  if (options.tiles?.length) changes = onlyTiles(changes, options.tiles)
  // Uncommitted changes matter only when the checkout would overwrite them: a database that
  // already equals the target (e.g. a checkout killed after its write) loses nothing.
  const alreadyThere = partial ? count(changes) === 0 : sameTables(target, working)
  // Compared by content, not by object: the same rows in another column layout (a column
  // just left out of versioning) are not uncommitted changes.
  const dirty = headId !== null && !alreadyThere && (count(pending) > 0 || (!partial && !sameTables(headState, working) && !sameVersionedSchema(headState.snapshot.schema, working.snapshot.schema, ignoreOf(headState, working))))
  if (dirty && !options.force) {
    const set = await computeChangeSet(headState, working, reader, {bbox})
    throw new TilesyncError('DIRTY', `the database has uncommitted changes (${set.summary.rowsChanged} row${set.summary.rowsChanged === 1 ? '' : 's'}, ${set.tiles.length} tile${set.tiles.length === 1 ? '' : 's'})`, {
      hint: 'commit them first (`tilesync commit -m ...`), or pass --force to overwrite them (they are saved first)',
    })
  }
  return {changes, dirty}
}

/**
 * Reads the working database and decides what to write, trusting the change record only as
 * far as the rows about to be written bear it out: each of those is read and compared first,
 * and if one holds something the record never saw (a write through incremental blob I/O), the
 * whole database is read again, so that what is overwritten is saved (or refused) like any
 * other uncommitted change. Tables the checkout replaces whole are read in full from the start.
 */
async function scanAndAssess(ws: Workspace, db: Db, options: CheckoutOptions, ctx: {target: TreeState; headId: string | null; headState: TreeState; bbox?: BBox; partial: boolean}, store: boolean, how: {verify?: boolean; rescan?: boolean} = {}): Promise<Assessed> {
  const fullTables = ctx.partial ? undefined : tablesReplacedWhole(db, ctx.target.snapshot.schema)
  // A partial clone's database holds the region's tiles only: nothing is written outside it.
  const region = (a: {changes: RawChanges; dirty: boolean}) => ({...a, changes: changesInRegion(a.changes, ctx.target.snapshot.tileTable, ws.repo.partial)})
  let working = await ws.scan(db, {store, fullTables, rescan: how.rescan})
  let assessed = region(await assessCheckout(working.reader, working.state, options, ctx))
  if ((how.verify ?? true) && working.tracking.used && await firstUnexpectedRow(db, assessed.changes, working.reader.objects, fullTables) !== null) {
    working = await ws.scan(db, {store, rescan: true})
    assessed = region(await assessCheckout(working.reader, working.state, options, ctx))
  }
  return {working, ...assessed}
}

interface Assessed {
  working: ScanResult
  changes: RawChanges
  dirty: boolean
}

/**
 * Writes a checkout inside the caller's write transaction. `scannedUpTo`: when the scan ran
 * before the transaction, the record's sequence number at its moment; changes recorded after
 * it (the pipeline's since, and this checkout's own writes) stay in the record.
 */
async function writeCheckout(ws: Workspace, db: Db, options: CheckoutOptions, ctx: {targetId: string; target: TreeState; headId: string | null; headState: TreeState; bbox?: BBox; partial: boolean}, assessed: Assessed, scannedUpTo: number | null): Promise<{result: CheckoutResult; head: Head | null}> {
  const {targetId, target, headId, partial} = ctx
  const {working, changes, dirty} = assessed
  if (working.tracking.installed && !working.tracking.used) markBaseline(db, working.state.snapshotId, working.tracking.upTo)
  const savedAs = dirty ? await saveWorking(ws, working.state, headId) : null
  const progress = await createProgress('rows')
  let applied: ApplyResult
  try {
    progress.start(count(changes), 'checkout')
    applied = await applyToDatabase(db, {
      changes,
      targetSchema: partial ? undefined : target.snapshot.schema,
      targetTables: target.tables,
      targetHeader: partial ? undefined : target.snapshot.header,
      ignore: ws.ignoreRules(),
      partialTables: partialTables(target.snapshot.tileTable, ws.repo.partial),
    }, ws.reader, () => progress.increment())
  } finally {
    progress.stop()
  }
  // After a full checkout the database equals the target (apart from what was recorded since
  // the scan, when it ran before this transaction): the change record restarts there.
  if (!partial) {
    const installed = readTrackingState(db).installed
    markBaseline(db, target.snapshotId, !installed ? 0 : scannedUpTo ?? maxSeq(db))
  }
  else if (readTrackingState(db).installed) advanceCounter(db, !working.tracking.used || working.tracking.outside === 'none')
  let head: Head | null = null
  if (!partial) head = await headAfterCheckout(ws, options.revision, targetId)
  const detached = head?.kind === 'detached'
  const tileTable = target.snapshot.tileTable ?? ''
  return {head, result: {
    target: targetId,
    head: partial ? headId ?? targetId : targetId,
    detached,
    partial,
    rowsWritten: applied.rowsWritten,
    rowsDeleted: applied.rowsDeleted,
    tilesChanged: changes.get(tileTable)?.changes.length ?? 0,
    savedAs,
  }}
}

/**
 * Where HEAD points after a full checkout: a branch named by the revision (at the target),
 * the branch HEAD is on for `checkout HEAD` (`--force` throwing changes away stays on it, as
 * in git), else detached at the target.
 */
async function headAfterCheckout(ws: Workspace, revision: string, targetId: string): Promise<Head> {
  const branch = await ws.repo.refs.read(`refs/heads/${revision}`).catch(() => null)
  if (branch === targetId) return {kind: 'branch', ref: `refs/heads/${revision}`, branch: revision}
  if (revision === 'HEAD' || revision === '@') {
    const current = await ws.repo.refs.readHead()
    if (current.kind === 'branch' && (await ws.repo.refs.read(current.ref)) === targetId) return current
  }
  return {kind: 'detached', id: targetId}
}

/**
 * checkout --dry-run: the same checks and the same counts as the real checkout, from a
 * read-only look. The database is opened read-only, the working tree is hashed in memory
 * (nothing stored), and neither HEAD nor refs/saved move.
 */
async function previewCheckout(ws: Workspace, options: CheckoutOptions, partial: boolean): Promise<CheckoutResult> {
  const {targetId, target, headId, headState, bbox} = await prepareCheckout(ws, options)
  const inUse = databaseUsers(ws.repo.databasePath)
  if (inUse.length) options.onInUse?.(inUse)
  const db = ws.openDb(true)
  try {
    // The scan holds no long lock; the counts are computed from its moment.
    {
      const {changes, dirty} = await scanAndAssess(ws, db, options, {target, headId, headState, bbox, partial}, false)
      const counts = previewApply(db, changes, partial ? undefined : target.snapshot.schema, target.tables, ws.ignoreRules())
      const after = partial ? null : await headAfterCheckout(ws, options.revision, targetId)
      return {
        target: targetId,
        head: partial ? headId ?? targetId : targetId,
        detached: after?.kind === 'detached',
        partial,
        rowsWritten: counts.rowsWritten,
        rowsDeleted: counts.rowsDeleted,
        tilesChanged: changes.get(target.snapshot.tileTable ?? '')?.changes.length ?? 0,
        savedAs: null,
        dryRun: true,
        wouldSave: dirty,
        inUse,
      }
    }
  } finally {
    db.close()
  }
}

export interface CheckoutIntoResult {
  target: string
  file: string
  rows: number
}

/**
 * `checkout REV --into FILE`: writes the revision into a new database file, leaving the
 * working database alone. It is how a damaged database is restored (its pages cannot be
 * trusted, so nothing is written into it), and how a revision is looked at side by side. The
 * file is built under a temp name and renamed into place when complete.
 */
export async function checkoutInto(ws: Workspace, revision: string, file: string): Promise<CheckoutIntoResult> {
  const dest = path.resolve(file)
  if (existsSync(dest)) throw new TilesyncError('DESTINATION_EXISTS', `${dest} already exists`, {hint: 'name a new file; tilesync never overwrites one with --into'})
  if (dest === path.resolve(ws.repo.databasePath)) throw new TilesyncError('BAD_ARGUMENT', '--into names the working database itself', {hint: 'give a new file name, e.g. restored.db'})
  return ws.repo.withLock('checkout', async () => {
    const targetId = await ws.resolve(revision)
    const target = await ws.stateOf(targetId)
    await fs.mkdir(path.dirname(dest), {recursive: true})
    const tmp = `${dest}.tilesync-into.tmp`
    await fs.rm(tmp, {force: true})
    try {
      const rows = await writeNewDatabase(tmp, target, ws.reader, ws)
      await fs.rename(tmp, dest)
      return {target: targetId, file: dest, rows}
    } catch (error) {
      await fs.rm(tmp, {force: true})
      throw error
    }
  })
}
