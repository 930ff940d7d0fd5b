import {listUserTables, quoteIdent, tableColumns} from './introspect.js'
import type {Db} from './open-database.js'
import {tokenize} from '../snapshot/schema-text.js'

/** A table init proposes to leave out of versioning, and why. */
export interface IgnoreProposal {
  table: string
  reasons: string[]
}

const STATUS = /^(status|state|job_status|queue_status)$/i
const TIMESTAMP = /(^|_)(created|updated|started|completed|finished|queued|enqueued|modified|processed|logged)(_at|_on|_time|_ts)?$|(_at|_time|_ts)$|^(timestamp|ts|time)$/i
const NAME = /(^|_)(queue|queues|jobs?|tasks?|logs?|events?|history|audit|runs?)($|_)/i

/**
 * Tables that look like a work queue or a log rather than versioned data: an AUTOINCREMENT
 * key, a status column, timestamp columns, a queue-like name, rows already deleted (the
 * pipeline drops finished queue items). Rolling such a table back with a checkout would
 * re-run or lose queued work under the running app, so init leaves them out by default.
 */
export function proposeIgnores(db: Db, tileTable: string): IgnoreProposal[] {
  const out: IgnoreProposal[] = []
  const sequences = new Map<string, number>()
  if (db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'`).get()) {
    for (const r of db.prepare('SELECT name, seq FROM sqlite_sequence').all() as Array<{name: string; seq: number}>) sequences.set(r.name, Number(r.seq))
  }
  for (const table of listUserTables(db)) {
    if (table === tileTable) continue
    const sql = (db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`).get(table) as {sql: string | null} | undefined)?.sql ?? ''
    const cols = tableColumns(db, table)
    const reasons: string[] = []
    const autoincrement = tokenize(sql).some((t) => t.kind === 'word' && t.text.toUpperCase() === 'AUTOINCREMENT')
    if (autoincrement) reasons.push('AUTOINCREMENT key')
    const status = cols.filter((c) => STATUS.test(c.name)).map((c) => c.name)
    if (status.length) reasons.push(`a ${status[0]} column`)
    const times = cols.filter((c) => TIMESTAMP.test(c.name)).map((c) => c.name)
    if (times.length) reasons.push(`timestamp column${times.length > 1 ? 's' : ''} ${times.slice(0, 3).join(', ')}`)
    if (NAME.test(table)) reasons.push('a queue or log name')
    const seq = sequences.get(table)
    if (seq !== undefined) {
      const rows = Number((db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(table)}`).get() as {n: number}).n)
      if (seq > rows) reasons.push(`rows deleted (${seq} ids issued, ${rows} left)`)
    }
    const score = reasons.length
    if ((autoincrement && score >= 3) || score >= 4) out.push({table, reasons})
  }
  return out
}
