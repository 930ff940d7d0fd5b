import {TilesyncError} from '../core/errors.js'
import type {BBox} from '../snapshot/tree-reader.js'
import {type ChangeSet, computeChangeSet} from '../snapshot/change-set.js'
import type {PerceptualDiff} from './perceptual-diff.js'
import type {TreeState} from '../snapshot/tree-state.js'
import type {Workspace} from '../workspace/workspace.js'

export interface DiffResult {
  from: string
  to: string
  changes: ChangeSet
  /** With `perceptual`: the modified tiles split by what happened to their images. */
  perceptual?: PerceptualDiff
}

export function parseBBox(text: string): BBox {
  const parts = text.split(',').map((p) => Number(p.trim()))
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n))) {
    throw new TilesyncError('BAD_ARGUMENT', `--bbox must be four integers x0,y0,x1,y1, got "${text}"`, {hint: 'e.g. --bbox -10,-10,10,10'})
  }
  const [x0, y0, x1, y1] = parts
  return [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)]
}

/**
 * No revision: working database vs HEAD. One: working database vs REV. Two: REV vs REV2.
 */
export async function diff(ws: Workspace, options: {from?: string; to?: string; bbox?: BBox; perceptual?: {threshold?: number}} = {}): Promise<DiffResult> {
  const result = await plainDiff(ws, options)
  if (!options.perceptual) return result.diff
  // Loaded only here: a plain diff needs no image decoder.
  const {perceptualDiff} = await import('./perceptual-diff.js')
  return {...result.diff, perceptual: await perceptualDiff(ws, result.diff.changes, {threshold: options.perceptual.threshold, working: result.working})}
}

async function plainDiff(ws: Workspace, options: {from?: string; to?: string; bbox?: BBox}): Promise<{diff: DiffResult; working?: TreeState}> {
  const fromId = options.from ? await ws.resolve(options.from) : await ws.repo.refs.headCommit()
  const fromState = await ws.stateOf(fromId)
  if (options.to) {
    const toId = await ws.resolve(options.to)
    const changes = await computeChangeSet(fromState, await ws.stateOf(toId), ws.reader, {bbox: options.bbox})
    return {diff: {from: fromId ?? '', to: toId, changes}}
  }
  const db = ws.openDb(true)
  let working: {state: TreeState; reader: Workspace['reader']}
  try {
    working = await ws.scan(db, {store: false})
  } finally {
    db.close()
  }
  const changes = await computeChangeSet(fromState, working.state, working.reader, {bbox: options.bbox})
  return {diff: {from: fromId ?? '', to: 'working', changes}, working: working.state}
}
