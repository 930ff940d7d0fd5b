/**
 * Every failure a user can meet is a TilesyncError with a stable `code`.
 * Tests and the CLI rely on `code` (not on `instanceof`, which breaks across bundles),
 * and `hint` says what to do next, so each error can be printed as one clear line.
 */
export type ErrorCode =
  | 'NOT_A_REPO'
  | 'ALREADY_A_REPO'
  | 'NOT_SQLITE'
  | 'DB_MISSING'
  | 'DB_LOCKED'
  | 'TABLE_MISSING'
  | 'NO_KEY'
  | 'BAD_CONFIG'
  | 'UNKNOWN_REVISION'
  | 'AMBIGUOUS_REVISION'
  | 'BAD_REVISION'
  | 'REVISION_OUT_OF_RANGE'
  | 'NO_COMMITS'
  | 'DIRTY'
  | 'NOTHING_TO_COMMIT'
  | 'OBJECT_MISSING'
  | 'OBJECT_CORRUPT'
  | 'REPO_LOCKED'
  | 'REF_EXISTS'
  | 'REF_MISSING'
  | 'BAD_NAME'
  | 'REMOTE_EXISTS'
  | 'REMOTE_UNKNOWN'
  | 'REMOTE_UNSUPPORTED'
  | 'REMOTE_MOVED'
  | 'RELEASE_SUPERSEDED'
  /** Ctrl-C or SIGTERM stopped the command (src/cli/interrupt.ts; exit 130 / 143). */
  | 'INTERRUPTED'
  | 'REMOTE_EMPTY'
  | 'REMOTE_AUTH'
  | 'REMOTE_UNREACHABLE'
  | 'REMOTE_PROTOCOL'
  | 'TRANSFER_FAILED'
  | 'MERGE_IN_PROGRESS'
  | 'NO_MERGE'
  | 'MERGE_CONFLICT'
  | 'BAD_ARGUMENT'
  | 'TILE_MISSING'
  | 'DESTINATION_EXISTS'
  | 'DISK_FULL'
  | 'HOSTILE_PATH'
  | 'BAD_DATASET'
  | 'UNSUPPORTED_SHAPE'
  | 'UNSUPPORTED_VALUE'
  | 'DB_CHANGED'
  | 'DB_CORRUPT'
  | 'DB_READONLY'
  | 'DB_CONSTRAINT'
  | 'DB_ERROR'
  | 'UNKNOWN_COMMAND'
  | 'UNKNOWN_FLAG'
  | 'MISSING_ARGUMENT'

export class TilesyncError extends Error {
  readonly code: ErrorCode
  readonly hint?: string
  readonly data?: Record<string, unknown>

  constructor(code: ErrorCode, message: string, options: {hint?: string; data?: Record<string, unknown>; cause?: unknown} = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'TilesyncError'
    this.code = code
    this.hint = options.hint
    this.data = options.data
  }

  /** The single line shown to a user: the problem, then what to do about it. */
  get oneLine(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message
  }
}

export function isTilesyncError(err: unknown, code?: ErrorCode): err is TilesyncError {
  return typeof err === 'object' && err !== null && (err as {name?: string}).name === 'TilesyncError' &&
    (code === undefined || (err as TilesyncError).code === code)
}
