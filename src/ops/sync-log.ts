import * as fs from 'node:fs/promises'

import type {Repository} from '../repo/repository.js'

export interface SyncLogEntry {
  time: string
  op: string
  remote: string
  branch?: string
  from?: string | null
  to?: string | null
  objects?: number
  bytes?: number
  durationMs: number
  result: 'ok' | 'error' | 'dry-run'
  error?: string
}

/**
 * Runs one push / pull / fetch / clone and appends what happened to `.tilesync/sync-log.jsonl`
 * (time, remote, branch, from -> to, objects, bytes, duration, result or error).
 */
export async function recordSync<T extends {from?: string | null; to?: string | null; objects?: number; bytes?: number; dryRun?: boolean}>(
  repo: Repository, what: {op: string; remote: string; branch?: string}, fn: () => Promise<T>,
  /** What the operation learnt as it ran (fetch of every branch: which branch, from -> to). */
  learnt?: (result: T) => {branch?: string; from?: string | null; to?: string | null},
): Promise<T> {
  const start = Date.now()
  try {
    const result = await fn()
    const more = learnt?.(result) ?? {}
    await appendSyncLog(repo, {
      time: new Date(start).toISOString(), ...what, ...(more.branch ? {branch: more.branch} : {}),
      from: (more.from !== undefined ? more.from : result.from) ?? null, to: (more.to !== undefined ? more.to : result.to) ?? null,
      objects: result.objects, bytes: result.bytes, durationMs: Date.now() - start, result: result.dryRun ? 'dry-run' : 'ok',
    })
    return result
  } catch (error) {
    const message = (error as {oneLine?: string}).oneLine ?? (error as Error).message
    await appendSyncLog(repo, {time: new Date(start).toISOString(), ...what, durationMs: Date.now() - start, result: 'error', error: message}).catch(() => {})
    throw error
  }
}

export async function appendSyncLog(repo: Repository, entry: SyncLogEntry): Promise<void> {
  await fs.appendFile(repo.layout.syncLog, JSON.stringify(entry) + '\n')
}

export async function readSyncLog(repo: Repository, remote?: string): Promise<SyncLogEntry[]> {
  const text = await fs.readFile(repo.layout.syncLog, 'utf8').catch(() => '')
  const out: SyncLogEntry[] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    try {
      const e = JSON.parse(line) as SyncLogEntry
      if (!remote || e.remote === remote) out.push(e)
    } catch {
      // a torn last line after a crash is skipped
    }
  }
  return out
}
