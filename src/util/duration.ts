import {TilesyncError} from '../core/errors.js'

const UNITS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000}

/** "2h", "30m", "45s", "1d", "1h30m", "0": a duration in milliseconds (a bare number is seconds). */
export function parseDuration(text: string, what = '--grace'): number {
  const t = text.trim().toLowerCase()
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000)
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)]
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) {
    throw new TilesyncError('BAD_ARGUMENT', `${what} must be a duration such as 2h, 30m, 45s or 1d, got "${text}"`, {hint: 'e.g. --grace 2h'})
  }
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]], 0))
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s'
  for (const [unit, size] of [['d', UNITS.d], ['h', UNITS.h], ['m', UNITS.m], ['s', UNITS.s]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}
