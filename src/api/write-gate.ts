import {TilesyncError} from '../core/errors.js'
import type {Progress} from '../util/progress.js'

export interface RunningOperation {
  op: string
  /** The request's parameters, as given (remote, branch, dry run), for "what is running". */
  params: Record<string, unknown>
  startedAt: string
  /** Set while the operation counts something (a push: objects sent of the total). */
  progress: {label: string; done: number; total: number} | null
}

export interface FinishedOperation {
  op: string
  params: Record<string, unknown>
  startedAt: string
  finishedAt: string
  result: 'ok' | 'error'
  error?: {code: string; message: string}
}

/**
 * One write operation at a time through the API (commit, push, pull): a second one while the
 * first runs is refused with BUSY, naming what runs, rather than queued behind it, so a
 * pipeline sees at once that it asked for overlapping work. The running one's progress is
 * kept here for GET /api/status.
 */
export class WriteGate {
  running: RunningOperation | null = null
  last: FinishedOperation | null = null

  async run<T>(op: string, params: Record<string, unknown>, fn: (progress: Progress) => Promise<T>): Promise<T> {
    const now = this.running
    if (now) {
      throw new TilesyncError('BUSY', `a ${now.op} is running (started ${now.startedAt}); one write operation at a time`, {
        hint: 'wait for it to finish (GET /api/status shows its progress), then try again',
        data: {running: now},
      })
    }
    const running: RunningOperation = {op, params, startedAt: new Date().toISOString(), progress: null}
    this.running = running
    const progress: Progress = {
      enabled: true,
      start(total, label) {
        running.progress = {label, done: 0, total}
      },
      increment(n = 1) {
        if (running.progress) running.progress.done += n
      },
      stop() {},
    }
    try {
      const result = await fn(progress)
      this.last = {op, params, startedAt: running.startedAt, finishedAt: new Date().toISOString(), result: 'ok'}
      return result
    } catch (error) {
      const e = error as {code?: string; message?: string}
      this.last = {op, params, startedAt: running.startedAt, finishedAt: new Date().toISOString(), result: 'error', error: {code: e.code ?? 'ERROR', message: e.message ?? String(error)}}
      throw error
    } finally {
      this.running = null
    }
  }
}
