import {type ErrorCode, isTilesyncError, TilesyncError} from '../../core/errors.js'

/** What the HTTP thread and the viewer's worker thread say to each other. */
export interface CallMessage {
  id: number
  method: string
  args: unknown[]
}

export interface SerializedError {
  message: string
  code?: string
  hint?: string
}

export type WorkerMessage =
  | {kind: 'ready'}
  | {kind: 'fatal'; error: SerializedError}
  | {kind: 'reply'; id: number; json: string}
  | {kind: 'reply'; id: number; bytes: Uint8Array; type: string}
  | {kind: 'error'; id: number; error: SerializedError}

export function serializeError(error: unknown): SerializedError {
  if (isTilesyncError(error)) return {message: error.message, code: error.code, ...(error.hint ? {hint: error.hint} : {})}
  return {message: error instanceof Error ? error.message : String(error)}
}

/** The error again on this side: a TilesyncError keeps its code (the HTTP status depends on it). */
export function deserializeError(error: SerializedError): Error {
  if (error.code) return new TilesyncError(error.code as ErrorCode, error.message, {hint: error.hint})
  return new Error(error.message)
}
