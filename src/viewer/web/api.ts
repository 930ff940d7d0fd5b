import type {BuildStatus, CommitView, DiffResponse, PerceptualResponse, PyramidIndex, RefsView, TileHistoryView} from './protocol.js'
import {query} from './dom.js'

/** The server's JSON, typed (see protocol.ts); a failure carries the server's one-line message. */
async function getJson<T>(path: string): Promise<T> {
  const r = await fetch(path)
  const body = (await r.json()) as T & {error?: string}
  if (!r.ok) throw new Error(body.error ?? r.statusText)
  return body
}

export const api = {
  refs: () => getJson<RefsView>('/api/refs'),
  log: (limit: number) => getJson<{commits: CommitView[]}>(`/api/log?${query({limit})}`),
  pyramid: (rev: string, layer?: string | null) => getJson<PyramidIndex>(`/api/pyramid?${query({rev, layer})}`),
  status: () => getJson<BuildStatus>('/api/pyramid/status'),
  diff: (from: string, to: string) => getJson<DiffResponse>(`/api/diff?${query({from, to})}`),
  perceptual: (from: string, to: string) => getJson<PerceptualResponse>(`/api/perceptual?${query({from, to})}`),
  tileHistory: (rev: string, x: number, y: number) => getJson<TileHistoryView>(`/api/tile-history?${query({rev, x, y})}`),
}

export function objectUrl(id: string, download?: string): string {
  return `/api/object/${id}.png${download ? `?${query({download})}` : ''}`
}

export function thumbUrl(id: string, size: number): string {
  return `/api/thumb/${size}/${id}.webp`
}
