import type {DatasetSource} from '../dataset/source.js'
import type {TreeReader} from '../snapshot/tree-reader.js'
import type {Progress} from '../util/progress.js'
import type {Workspace} from '../workspace/workspace.js'
import type {PruneOptions, PruneResult, VerifyCheck} from './capabilities.js'

/**
 * One remote, whatever it is (a directory, an S3 or R2 bucket, an oxen.ai repository), at
 * the level of commits and branches. push, fetch, pull and clone (src/ops/) are written once
 * against this; how objects travel (one key per object, packs, a dataset per commit) is the
 * transport's business. Members marked optional are capabilities, as rclone's optional
 * interfaces are: test for them at run time. Every kind passes the conformance suite in
 * test/support/transport-conformance.ts.
 */
export interface Transport {
  /** 'directory', 's3', 'r2', 'oxen', ...: for messages only; code asks for capabilities. */
  readonly kind: string
  /** Where it points, for messages. Never contains credentials. */
  readonly location: string
  /** Whether fetch takes a pinned commit id (a release) as well as branches. */
  readonly fetchesCommits: boolean

  /** The branches, sorted by name. `local` lets a transport name tips by local commit ids. */
  listBranches(local?: Workspace): Promise<RemoteBranch[]>

  /** One branch with its version tag, or null when the remote has no such branch (or it holds no tile data). */
  readBranch(name: string, local?: Workspace): Promise<RemoteBranch | null>

  /** What was recorded about the repository pushed there (database path, tile table, default branch). */
  readMeta(branch?: RemoteBranch): Promise<RemoteMeta | null>

  /**
   * Brings into the local store everything the history of each tip needs that it lacks,
   * every object verified by its hash before it is kept. A tip is a branch as read from this
   * remote, or a commit id when `fetchesCommits`. Refs and the database are not touched.
   */
  fetch(local: Workspace, tips: Array<RemoteBranch | string>, options?: FetchOptions): Promise<FetchedTip[]>

  /**
   * Sends what the remote lacks of the commits after `have` up to `tip`, then moves the
   * branch by compare-and-swap against `expected`: it lands, or the branch had moved (and
   * nothing it names was overwritten). An interrupted push leaves the branch where it was;
   * the next one sends only what is still missing.
   */
  push(local: Workspace, request: PushRequest): Promise<PushOutcome>

  close(): Promise<void>

  // ---- optional capabilities ------------------------------------------------------------

  /** The remote's content-addressed objects by id: fsck, promotion and releases read them. */
  readonly objects?: RemoteObjects

  /**
   * Promotion: pushes `request.tip` as held by `source` (another remote) without the bytes
   * passing through the local store, server-side when both are buckets of one account.
   * Never overwrites: a branch that is not an ancestor of the tip is reported as moved, unless
   * the request says force (a release rollback), which still moves it by compare-and-swap.
   */
  copyFrom?(local: Workspace, source: Transport, request: PushRequest): Promise<PushOutcome>

  /** Keeps the last N commits of every branch and removes what only older commits used. */
  prune?(options: PruneOptions): Promise<PruneResult>

  /** Does on a scratch key what push and pull will do (write, read, list, delete); never throws. */
  verify?(): Promise<VerifyCheck[]>

  /** Removes a branch if it is still at `expected`; false when it had moved (nothing removed). */
  deleteBranch?(name: string, expected: RemoteBranch): Promise<boolean>
  /**
   * The files at a branch's head as a dataset (remotes that publish browsable files, such as
   * oxen): `tilesync import` reads datasets written with other tools from it. Without
   * `branch`, the remote's default branch.
   */
  openDataset?(branch?: string): Promise<{source: DatasetSource; branch: string; revision: string}>
}

export interface RemoteBranch {
  name: string
  /**
   * The tilesync commit at the tip. null: the remote cannot name it without a fetch (a hub
   * commit made with other tools, not yet rebuilt here).
   */
  commit: string | null
  /** Opaque version tag for compare-and-swap (an ETag, a hub commit id). */
  version: string
}

/** What a push records on a new remote so that a clone can set itself up the same way. */
export interface RemoteMeta {
  database?: string
  tileTable?: string
  keyColumns?: string[]
  imageColumns?: string[]
  xyColumns?: [string, string]
  defaultBranch?: string
}

export interface FetchOptions {
  /** Count what would be fetched, storing nothing. */
  dryRun?: boolean
  progress?: Progress
  /**
   * Work to run while objects are still arriving, given a reader that waits for each one
   * (clone builds its database this way). A transport that cannot overlap runs it once the
   * fetch is complete. Only with a single tip.
   */
  alongside?: (reader: TreeReader, tip: string) => Promise<void>
  /** Hard-link objects from a remote on this machine instead of copying them (clone). */
  hardLinks?: boolean
}

export interface FetchedTip {
  /** The commit now held locally for the tip; null when it holds no tile data (or, with dryRun, is not known yet). */
  commit: string | null
  /** Commits new to the local store (with dryRun: that would be). */
  commits: number
  objects: number
  bytes: number
  /** Said in the reflog of the remote-tracking ref (e.g. the hub commit it came from). */
  note?: string
}

export interface PushRequest {
  branch: string
  /** The commit the branch moves to. */
  tip: string
  /**
   * Commits the remote holds that the local side has too (the branch's tip, other branches'
   * tips): only what lies after them travels.
   */
  have: string[]
  /** The branch as read before; null: create it. */
  expected: RemoteBranch | null
  /** Overwrite a branch that is not an ancestor of `tip` (the caller decided). */
  force?: boolean
  /** Count what would be sent, writing nothing. */
  dryRun?: boolean
  /** Remove files of tiles that no longer exist, where the remote publishes files (default: it only grows). */
  prune?: boolean
  progress?: Progress
  /** Called each time the branch has moved to a commit (a transport that moves it commit by commit calls it for each). */
  moved?: (commit: string, note?: string) => Promise<void>
  /** 'push' or 'promote', for messages. */
  verb?: string
}

export type PushOutcome =
  | ({status: 'landed' | 'dry-run'} & PushStats)
  | {status: 'moved'; tip: string | null}

export interface PushStats {
  commits: number
  objects: number
  bytes: number
  /** Objects an interrupted earlier push had already sent. */
  skipped: number
  /** True when every copy was made by the storage service itself (copyFrom). */
  serverSide?: boolean
  /** Kind-specific figures for --json (oxen: files removed, hub commits). */
  details?: Record<string, unknown>
}

/** Optional capability: objects by id, each read verified against its hash. */
export interface RemoteObjects {
  /** OBJECT_MISSING / OBJECT_CORRUPT when it is absent or its bytes do not hash to `id`. */
  read(id: string): Promise<Buffer>
  /** The stored bytes unverified (fsck hashes them itself); null when absent. */
  readRaw(id: string): Promise<Buffer | null>
  write(id: string, bytes: Buffer): Promise<void>
  /** Sizes of those of `ids` that are present, found by listing rather than a request each. */
  sizesOf(ids: Iterable<string>): Promise<Map<string, number>>
  list(): AsyncIterable<{id: string; size: number}>
  /** Commits whose parents a prune removed: history ends there. */
  shallowRoots(): Promise<Set<string>>
  /** Every branch name, damaged ones included (readBranch then throws REMOTE_PROTOCOL). */
  branchNames(): Promise<string[]>
  /** Makes every write so far durable. */
  flush(): Promise<void>
  /** The local file holding `id`, when the remote is a directory on this machine (for hard links). */
  localFile?(id: string): string | null
}
