import type {DatabaseHeader, Snapshot, TableTree} from './model.js'

/** The part of a tree state the header comparison needs. */
export interface HeaderSide {
  snapshot: Pick<Snapshot, 'header'>
  tables: ReadonlyMap<string, TableTree>
}

/** Whether two states' headers differ. One from before the header was kept says nothing: no difference. */
export function sameHeader(a: HeaderSide, b: HeaderSide): boolean {
  return headerChanges(a, b).length === 0
}

/**
 * What changed in the header, as people read it ("user_version 3 -> 4", "AUTOINCREMENT counter
 * of jobs 7 -> 9"). Counters count for tables both sides version: a table added or removed is a
 * change of its own, and one just left out of versioning (`tilesync ignore`) takes its counter
 * with it.
 */
export function headerChanges(a: HeaderSide, b: HeaderSide): string[] {
  const ha = a.snapshot.header
  const hb = b.snapshot.header
  if (!ha || !hb) return []
  const out: string[] = []
  if (ha.userVersion !== hb.userVersion) out.push(`user_version ${ha.userVersion} -> ${hb.userVersion}`)
  if (ha.applicationId !== hb.applicationId) out.push(`application_id ${ha.applicationId} -> ${hb.applicationId}`)
  const both = (name: string): boolean => a.tables.has(name) && b.tables.has(name)
  const list = (h: DatabaseHeader): Array<[string, string]> => h.sequences.filter((s) => both(s.name)).map((s) => [s.name, String(s.seq)])
  const before = new Map(list(ha))
  const after = new Map(list(hb))
  for (const name of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const x = before.get(name)
    const y = after.get(name)
    if (x !== y) out.push(`AUTOINCREMENT counter of ${name} ${x ?? 'none'} -> ${y ?? 'none'}`)
  }
  // Duplicate names (a hand-edited sqlite_sequence) compare as lists.
  if (out.length === 0 && JSON.stringify(list(ha)) !== JSON.stringify(list(hb))) out.push('AUTOINCREMENT counters')
  return out
}
