/** The results of the transport's optional capabilities (see transport.ts). */

export interface PruneOptions {
  /** Commits to keep on each branch, following first parents (at least 1). */
  keepLast: number
  dryRun?: boolean
  /** Objects modified less than this long ago are never removed (a push may be running). */
  graceMs: number
}

export interface PruneResult {
  remote: string
  keepLast: number
  dryRun: boolean
  graceMs: number
  branches: Array<{branch: string; tip: string; kept: number; oldestKept: string}>
  /** Commits kept on the remote (the last N of every branch). */
  keptCommits: number
  /** Commits whose parents are cut off: the remote's `shallow` list after the prune. */
  shallow: string[]
  /** Objects reachable from the kept commits. */
  reachable: number
  /** Objects removed (or that would be, with --dry-run). */
  removed: {objects: number; bytes: number}
  /** Unreachable objects kept because they are younger than the grace period (a push in flight). */
  young: {objects: number; bytes: number}
  /** Stale temp keys (interrupted uploads, scratch keys) removed. */
  tmp: {objects: number; bytes: number}
  /** Packs rewritten without their unreachable objects, and the reachable objects (and bytes) moved to new packs. */
  repacked?: {packs: number; objects: number; bytes: number}
}

export interface VerifyCheck {
  check: 'list' | 'read' | 'write' | 'delete'
  ok: boolean
  detail: string
}

/** What `remote destroy` removes (or, with dryRun, would): everything tilesync stored there. */
export interface RemoteInventory {
  /** Where it is, for messages (never with credentials). */
  location: string
  /** What goes as a whole, in words: "12,034 keys under objects/, refs/heads/, ..." or "hub repository ns/repo". */
  what: string
  branches: Array<{name: string; commit: string | null; version: string}>
  /** Commits reachable from the branches. */
  commits: number
  /** Objects (object stores) or files at the default branch's head (oxen); null when the remote cannot count them. */
  objects: number | null
  bytes: number | null
  /** Keys removed, on a key/bytes store: objects, refs, metadata, scratch keys (null elsewhere). */
  keys: number | null
  dryRun: boolean
}

export interface DestroyOptions {
  /** Count only. */
  dryRun?: boolean
  /**
   * The branches as they were shown to the user: if the remote's branches differ now (someone
   * pushed), nothing is removed and REMOTE_MOVED is thrown, so what goes is what was confirmed.
   */
  expected?: Array<{name: string; version: string}>
}
