import type {OutsideWrites} from '../db/outside-writes.js'
import {describeShapes, type ShapeReport} from '../db/shapes.js'
import {type ChangeSet, computeChangeSet, isEmpty} from '../snapshot/change-set.js'
import {type IgnoredReport, ignoredReport} from './ignore.js'
import {inProgress} from './merge.js'
import {Workspace} from '../workspace/workspace.js'

export interface StatusResult {
  branch: string | null
  head: string | null
  database: string
  clean: boolean
  changes: ChangeSet
  /** A merge or a revert stopped with conflicts (both keep their state in one file). */
  merging: boolean
  inProgress: 'merge' | 'revert' | null
  /** How the working database was read: from the change record, or in full (and why). */
  scan: {incremental: boolean; reason: string; notes: string[]}
  /**
   * Whether the file was written outside the change record since the baseline (e.g. by
   * incremental blob I/O): then a status from the record may miss those changes.
   */
  outsideWrites: OutsideWrites
  /** What is versioned (and how changes are found), what is left out and why. */
  report: ShapeReport
  /** Tables and columns left out of versioning (never read). */
  ignored: IgnoredReport
}

/** What differs between the working database and HEAD. */
export async function status(ws: Workspace, options: {rescan?: boolean} = {}): Promise<StatusResult> {
  const head = await ws.repo.refs.readHead()
  const {id, state} = await ws.headState()
  const db = ws.openDb(true)
  try {
    const working = await ws.scan(db, {store: false, rescan: options.rescan, outside: 'report'})
    const changes = await computeChangeSet(state, working.state, working.reader)
    const pending = inProgress(ws)
    return {
      branch: head.kind === 'branch' ? head.branch : null,
      head: id,
      database: ws.repo.config.database,
      clean: isEmpty(changes),
      changes,
      merging: pending !== null,
      inProgress: pending,
      scan: {incremental: working.tracking.used, reason: working.tracking.reason, notes: working.notes},
      outsideWrites: working.tracking.outside,
      report: describeShapes(db, ws.specs(db), {tracking: ws.repo.config.tracking?.enabled !== false, ignore: ws.ignoreRules()}),
      ignored: ignoredReport(ws.ignoreRules(), db),
    }
  } finally {
    db.close()
  }
}
