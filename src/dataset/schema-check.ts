import Database from 'better-sqlite3'

import {TilesyncError} from '../core/errors.js'
import {isOwnName, listUserTables, readSchema, tableColumns} from '../db/introspect.js'
import type {SchemaEntry, TableTree} from '../snapshot/model.js'

/**
 * A dataset's schema is SQL that import will execute, so it is replayed first in a scratch
 * in-memory database: each entry must be ONE CREATE statement of its declared type, replay
 * cleanly, and read back from sqlite_master exactly as written; the table descriptors must
 * name the columns SQLite reports. Returns each table's NOT NULL columns (to check new rows).
 */
export function checkSchema(schema: SchemaEntry[], tables: Array<Pick<TableTree, 'name' | 'columns' | 'keyKind'>>, where: string): Map<string, Set<string>> {
  const bad = (why: string) => new TilesyncError('BAD_DATASET', `${where}: ${why}`, {hint: 'the dataset was damaged or tampered with; nothing was changed'})
  const order: Record<string, number> = {table: 0, index: 1, view: 2, trigger: 3}
  const db = new Database(':memory:')
  try {
    for (const e of [...schema].sort((a, b) => (order[a.type] ?? 9) - (order[b.type] ?? 9))) {
      if (!(e.type in order)) throw bad(`schema entry "${e.name}" has unknown type "${e.type}"`)
      if (isOwnName(e.name) || isOwnName(e.tblName)) throw bad(`schema entry "${e.name}" uses a reserved name`)
      if (e.sql.length > 1_000_000) throw bad(`schema entry "${e.name}" is too long`)
      const kind = e.type.toUpperCase()
      const re = kind === 'INDEX' ? /^\s*CREATE\s+(UNIQUE\s+)?INDEX\s/i : kind === 'TABLE' ? /^\s*CREATE\s+(VIRTUAL\s+)?TABLE\s/i : new RegExp(`^\\s*CREATE\\s+(TEMP\\s+|TEMPORARY\\s+)?${kind}\\s`, 'i')
      if (!re.test(e.sql)) throw bad(`schema entry "${e.name}" is not a CREATE ${kind} statement`)
      try {
        db.prepare(e.sql).run()
      } catch (err) {
        throw bad(`schema entry "${e.name}" does not replay (${String((err as Error).message).slice(0, 120)})`)
      }
    }
    const norm = (list: SchemaEntry[]) => JSON.stringify([...list].map((e) => [e.type, e.name, e.tblName, e.sql]).sort())
    if (norm(readSchema(db)) !== norm(schema)) throw bad('the schema does not read back as written')
    const names = listUserTables(db)
    const wanted = tables.map((t) => t.name).sort()
    // A table of the schema may have no rows recorded (it was left out of versioning): it is
    // created empty. Every recorded table must be one the schema creates.
    if (wanted.some((n) => !names.includes(n))) throw bad(`tables ${JSON.stringify(wanted)} do not match the schema's ${JSON.stringify(names)}`)
    const notNull = new Map<string, Set<string>>()
    for (const t of tables) {
      const stored = tableColumns(db, t.name).filter((c) => c.hidden === 0)
      const expected = stored.map((c) => ({name: c.name, declType: c.type}))
      if (t.keyKind === 'rowid') expected.unshift({name: 'rowid', declType: 'INTEGER'})
      // The recorded columns are the CREATE TABLE's, in its order, less any left out of versioning.
      let j = 0
      for (const c of t.columns) {
        while (j < expected.length && expected[j].name !== c.name) j++
        if (j >= expected.length || expected[j].declType !== c.declType) throw bad(`the columns of "${t.name}" do not match its CREATE TABLE`)
        j++
      }
      if (t.keyKind === 'rowid' && t.columns[0]?.name !== 'rowid') throw bad(`the columns of "${t.name}" do not match its CREATE TABLE`)
      notNull.set(t.name, new Set(stored.filter((c) => c.notnull).map((c) => c.name)))
    }
    return notNull
  } finally {
    db.close()
  }
}
