import {existsSync, readFileSync} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'

/**
 * A partial clone (`clone --bbox`) records its filter in `.tilesync/partial.json`: the
 * remote its missing objects come from and the region whose images it holds. Outside the
 * region the history and every tree are complete; only image blobs are missing, and a read
 * of one fetches it from `remote`, verified by its hash (git's promisor remote). The
 * database holds the region's tiles; the tiles outside it are carried from HEAD.
 */
export interface PartialFilter {
  remote: string
  /** x0,y0,x1,y1 inclusive, x0 <= x1, y0 <= y1. */
  bbox: [number, number, number, number]
}

export const PARTIAL_FILE = 'partial.json'

export function partialFileOf(storeDir: string): string {
  return path.join(storeDir, PARTIAL_FILE)
}

/** The filter of the repository whose `.tilesync/` is `storeDir`; null for a full clone. */
export function loadPartial(storeDir: string): PartialFilter | null {
  const file = partialFileOf(storeDir)
  if (!existsSync(file)) return null
  let data: unknown
  try {
    data = JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    data = null
  }
  const f = data as Partial<PartialFilter> | null
  if (!f || typeof f.remote !== 'string' || !Array.isArray(f.bbox) || f.bbox.length !== 4 || f.bbox.some((n) => !Number.isInteger(n))) {
    throw new TilesyncError('BAD_CONFIG', `${file} is damaged`, {hint: 'it records a partial clone\'s region and origin: write {"remote": "origin", "bbox": [x0, y0, x1, y1]} back'})
  }
  return {remote: f.remote, bbox: f.bbox as PartialFilter['bbox']}
}

export async function writePartial(storeDir: string, filter: PartialFilter): Promise<void> {
  await fs.writeFile(partialFileOf(storeDir), JSON.stringify(filter, null, 2) + '\n')
}

export function insideBox(bbox: PartialFilter['bbox'], x: number, y: number): boolean {
  return x >= bbox[0] && x <= bbox[2] && y >= bbox[1] && y <= bbox[3]
}
