import type {DatabaseHeader} from './model.js'

/** Whether two snapshots' headers differ. One from before the header was kept says nothing: no difference. */
export function sameHeader(a: DatabaseHeader | undefined, b: DatabaseHeader | undefined): boolean {
  return headerChanges(a, b).length === 0
}

/** What changed in the header, as people read it ("user_version 3 -> 4", "AUTOINCREMENT counter of jobs 7 -> 9"). */
export function headerChanges(a: DatabaseHeader | undefined, b: DatabaseHeader | undefined): string[] {
  if (!a || !b) return []
  const out: string[] = []
  if (a.userVersion !== b.userVersion) out.push(`user_version ${a.userVersion} -> ${b.userVersion}`)
  if (a.applicationId !== b.applicationId) out.push(`application_id ${a.applicationId} -> ${b.applicationId}`)
  const before = new Map(a.sequences.map((s) => [s.name, String(s.seq)]))
  const after = new Map(b.sequences.map((s) => [s.name, String(s.seq)]))
  for (const name of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const x = before.get(name)
    const y = after.get(name)
    if (x !== y) out.push(`AUTOINCREMENT counter of ${name} ${x ?? 'none'} -> ${y ?? 'none'}`)
  }
  // Duplicate names (a hand-edited sqlite_sequence) compare as lists.
  if (out.length === 0 && JSON.stringify(a.sequences.map((s) => [s.name, String(s.seq)])) !== JSON.stringify(b.sequences.map((s) => [s.name, String(s.seq)]))) out.push('AUTOINCREMENT counters')
  return out
}
