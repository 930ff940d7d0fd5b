import type {BuildStatus, PyramidIndex} from '../../src/viewer/web/protocol.js'

/**
 * For each zoom from -4 out to the index's coarsest: how many images lie over the given
 * leaves [lx, ly], from their coordinates alone. What a change inside those leaves must remake.
 */
export function imagesOver(leaves: Array<[number, number]>, index: PyramidIndex): Record<string, number> {
  const out: Record<string, number> = {}
  for (let z = -4; z >= index.minZoom; z--) {
    const span = 2 ** (-4 - z)
    out[String(z)] = new Set(leaves.map(([lx, ly]) => `${Math.floor((lx - index.origin[0] / 16) / span)},${Math.floor((ly - index.origin[1] / 16) / span)}`)).size
  }
  return out
}

/** The leaves that hold these tiles. */
export function leavesOf(tiles: Array<[number, number]>): Array<[number, number]> {
  return [...new Set(tiles.map(([x, y]) => `${Math.floor(x / 16)},${Math.floor(y / 16)}`))].map((l) => l.split(',').map(Number) as [number, number])
}

/** Images made per zoom between two build statuses (zooms with none left out). */
export function madeBetween(before: BuildStatus, after: BuildStatus): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [z, n] of Object.entries(after.made.byZoom)) if (n - (before.made.byZoom[z] ?? 0) > 0) out[z] = n - (before.made.byZoom[z] ?? 0)
  return out
}

export function timesLayers(counts: Record<string, number>, layers: number): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).map(([z, n]) => [z, n * layers]))
}
