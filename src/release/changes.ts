import {formatChangeSet} from '../cli/format.js'
import {isTilesyncError} from '../core/errors.js'
import type {DiffResult} from '../ops/diff.js'
import {type ChangeSet, computeChangeSet} from '../snapshot/change-set.js'
import type {Workspace} from '../workspace/workspace.js'

/** Per image layer: tiles that gained, replaced or lost an image in it. */
export interface LayerCounts {
  layer: string
  added: number
  modified: number
  removed: number
}

/** What a proposed release changes against the one before it: what a reviewer reads in the PR. */
export interface ReleaseChanges {
  /** The previous release's commit (null: this is the first release, everything is added). */
  from: string | null
  to: string
  tiles: {added: number; modified: number; deleted: number}
  layers: LayerCounts[]
  /** `tilesync diff FROM TO --stat`, line for line. */
  stat: string[]
  /** Kept for `--html` (the report is built from it). */
  diff: DiffResult
}

/**
 * The change from the last release to this one, read from the local store. null when the
 * previous release's commit is not in this repository (a clone that never fetched it): the
 * proposal then says so instead of guessing.
 */
export async function releaseChanges(ws: Workspace, from: string | null, to: string): Promise<ReleaseChanges | null> {
  let changes: ChangeSet
  try {
    changes = await computeChangeSet(await ws.stateOf(from), await ws.stateOf(to), ws.reader)
  } catch (error) {
    if (isTilesyncError(error, 'OBJECT_MISSING')) return null
    throw error
  }
  const layers = new Map<string, LayerCounts>()
  const count = (layer: string): LayerCounts => {
    let c = layers.get(layer)
    if (!c) layers.set(layer, (c = {layer, added: 0, modified: 0, removed: 0}))
    return c
  }
  for (const layer of changes.layers) count(layer)
  for (const t of changes.tiles) {
    for (const l of t.layers) {
      // A deleted tile takes its images along: counted as removed from each layer it had.
      const c = count(l.layer)
      if (t.status === 'deleted' || l.change === 'removed') c.removed++
      else if (t.status === 'added' || l.change === 'added') c.added++
      else c.modified++
    }
  }
  const s = changes.summary
  const out = {
    from, to,
    tiles: {added: s.tilesAdded, modified: s.tilesModified, deleted: s.tilesDeleted},
    layers: [...layers.values()].sort((a, b) => a.layer.localeCompare(b.layer)),
    stat: formatChangeSet(changes, {stat: true}),
  } as ReleaseChanges
  // Not enumerable: --json output carries the counts, not every changed row.
  Object.defineProperty(out, 'diff', {value: {from: from ?? '', to, changes}, enumerable: false})
  return out
}

/** The lines written into the proposed git commit's message. */
export function describeReleaseChanges(c: ReleaseChanges | null, previous: string | null): string[] {
  if (!c) return [`Changes since the last release (${previous?.slice(0, 10)}): not known here (that commit is not in this repository; \`tilesync fetch\` it to see them).`]
  const lines = [c.from ? `Changes since the last release (tilesync commit ${c.from.slice(0, 10)}):` : 'Changes: first release, every tile is new.']
  lines.push(`  tiles: ${c.tiles.added} added, ${c.tiles.modified} modified, ${c.tiles.deleted} deleted`)
  for (const l of c.layers) lines.push(`  layer ${l.layer}: ${l.added} added, ${l.modified} modified, ${l.removed} removed`)
  lines.push('', `tilesync diff ${c.from ? c.from.slice(0, 10) : '(empty)'} ${c.to.slice(0, 10)} --stat:`)
  for (const l of c.stat.length ? c.stat : ['No changes.']) lines.push(`  ${l}`)
  return lines
}
