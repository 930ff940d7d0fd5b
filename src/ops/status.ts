import * as fs from 'node:fs'

import {type ChangeSet, computeChangeSet} from '../snapshot/change-set.js'
import {type IgnoredReport, ignoredReport} from './ignore.js'
import {Workspace} from '../workspace/workspace.js'

export interface StatusResult {
  branch: string | null
  head: string | null
  database: string
  clean: boolean
  changes: ChangeSet
  merging: boolean
  /** How the working database was read: from the change record, or in full (and why). */
  scan: {incremental: boolean; reason: string}
  /** Tables and columns left out of versioning (never read). */
  ignored: IgnoredReport
}

/** What differs between the working database and HEAD. */
export async function status(ws: Workspace, options: {rescan?: boolean} = {}): Promise<StatusResult> {
  const head = await ws.repo.refs.readHead()
  const {id, state} = await ws.headState()
  const db = ws.openDb(true)
  try {
    const working = await ws.scan(db, {store: false, rescan: options.rescan})
    const changes = await computeChangeSet(state, working.state, working.reader)
    return {
      branch: head.kind === 'branch' ? head.branch : null,
      head: id,
      database: ws.repo.config.database,
      clean: changes.summary.rowsChanged === 0 && !changes.schemaChanged,
      changes,
      merging: fs.existsSync(ws.repo.layout.mergeState),
      scan: {incremental: working.tracking.used, reason: working.tracking.reason},
      ignored: ignoredReport(ws.ignoreRules(), db),
    }
  } finally {
    db.close()
  }
}
