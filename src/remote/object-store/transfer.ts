import {isTilesyncError, TilesyncError} from '../../core/errors.js'
import type {Progress} from '../../util/progress.js'
import type {RemoteStore} from './remote-store.js'

export interface TransferStats {
  objects: number
  bytes: number
  skipped: number
}

export function transferConcurrency(fallback = 16): number {
  const v = Number(process.env.TILESYNC_JOBS)
  return Number.isInteger(v) && v > 0 ? v : fallback
}

export function failed(what: string, done: TransferStats, total: number, error: unknown): TilesyncError {
  const reason = (error as {oneLine?: string; message?: string}).oneLine ?? (error as Error).message ?? String(error)
  return new TilesyncError('TRANSFER_FAILED', `${what} stopped after ${done.objects} of ${total} objects (${done.bytes} bytes): ${reason}`, {
    hint: 'nothing was published; run the same command again to send only what is still missing',
    cause: error,
  })
}

/** Where uploaded objects come from: the local store (push) or another remote (promotion). */
export interface ObjectSource {
  /** The bytes of an object, verified by hash where they are read. */
  get(id: string): Promise<Buffer>
  /** Copies `id` to `target` inside the storage service; false when it cannot. */
  copyTo?(target: RemoteStore, id: string): Promise<boolean>
}

export interface UploadOptions {
  concurrency: number
  progress?: Progress
  /** 'push' or 'promote': what messages call it. */
  verb: string
  /** Size of an object copied server-side (its bytes never pass here). */
  sizeOf: (id: string) => number
  /** Where a failed promotion leaves things, for its hint. */
  unchanged?: string
}

/**
 * A failed push says how far it got. A promotion passes its sources' own errors through (a
 * damaged object on the source is no transfer failure) and says the destination is unchanged.
 */
export function uploadFailed(options: UploadOptions, stats: TransferStats, total: number, error: unknown): TilesyncError {
  if (options.verb !== 'promote') return failed(options.verb, stats, total, error)
  if (isTilesyncError(error) && error.code !== 'TRANSFER_FAILED') return error
  const reason = (error as {oneLine?: string}).oneLine ?? (error as Error).message
  return new TilesyncError('TRANSFER_FAILED', `promote stopped after ${stats.objects} of ${total - stats.skipped} objects: ${reason}`, {
    hint: `${options.unchanged ?? 'the destination'} was not changed; run the same command again to copy only what is still missing`,
    cause: error,
  })
}
