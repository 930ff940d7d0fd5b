import {TilesyncError} from '../core/errors.js'
import {hashBytes} from '../core/hash.js'
import type {Db} from '../db/open-database.js'
import {scanLeafBlobs, type TableTree} from '../snapshot/model.js'
import {type BBox, overlapsLabel, type TreeReader} from '../snapshot/tree-reader.js'
import type {TreeState} from '../snapshot/tree-state.js'
import type {Workspace} from '../workspace/workspace.js'

/** One image of one tile: where it is and which object holds it. */
export interface TileImage {
  x: number
  y: number
  layer: string
  id: string
}

/** The spatially keyed tile table of a state, if it has one. */
export function tileTableOf(state: TreeState): TableTree | undefined {
  const name = state.snapshot.tileTable
  const table = name ? state.tables.get(name) : undefined
  return table && table.partition.kind === 'spatial' ? table : undefined
}

export function layerNames(table: TableTree): string[] {
  return table.layers.map((i) => table.columns[i].name)
}

/** Checks a --layer value against the table's image columns. */
export function checkLayer(table: TableTree, layer: string): void {
  const names = layerNames(table)
  if (!names.includes(layer)) {
    throw new TilesyncError('BAD_ARGUMENT', `no image layer "${layer}" in ${table.name}`, {hint: `the layers are ${names.join(', ') || '(none)'}`})
  }
}

/**
 * Every image in the tile table of `state` (only `layers`, only inside `bbox` when given), in
 * tree order; NULL cells are skipped. Leaf by leaf, reading only the cells it needs (see
 * scanLeafBlobs): a city's 100,000 rows are 400 awaits and no row objects.
 */
export async function listTileImages(state: TreeState, reader: TreeReader, layers?: string[], bbox?: BBox): Promise<TileImage[]> {
  const table = tileTableOf(state)
  const out: TileImage[] = []
  if (!table || table.partition.kind !== 'spatial') return out
  const {x: xi, y: yi} = table.partition
  const wanted = table.layers.filter((li) => !layers || layers.includes(table.columns[li].name))
  const names = wanted.map((li) => table.columns[li].name)
  for (const mid of await reader.innerEntries(table.root)) {
    if (bbox && !overlapsLabel(mid.label, 2, bbox)) continue
    for (const leaf of await reader.innerEntries(mid.id)) {
      if (bbox && !overlapsLabel(leaf.label, 1, bbox)) continue
      scanLeafBlobs(await reader.objects.get(leaf.id), xi, yi, wanted, (x, y, ids) => {
        if (bbox && (x < bbox[0] || x > bbox[2] || y < bbox[1] || y > bbox[3])) return
        for (let k = 0; k < ids.length; k++) if (ids[k] !== null) out.push({x, y, layer: names[k], id: ids[k]!})
      })
    }
  }
  return out
}

/**
 * Reads image bytes: from the object store, or (for the working database, whose new images
 * are not stored yet) from the database row that holds them, checked against the id.
 */
export class ImageReader {
  private db?: Db

  constructor(private readonly ws: Workspace, private readonly working?: {state: TreeState}) {}

  async read(image: TileImage): Promise<Buffer> {
    if (!this.working || await this.ws.repo.store.has(image.id)) return this.ws.repo.store.get(image.id)
    const table = tileTableOf(this.working.state)
    if (!table || table.partition.kind !== 'spatial') throw new TilesyncError('OBJECT_MISSING', `no object ${image.id}`)
    const q = (name: string): string => `"${name.replaceAll('"', '""')}"`
    const xName = table.columns[table.partition.x].name
    const yName = table.columns[table.partition.y].name
    this.db ??= this.ws.openDb(true)
    const row = this.db.prepare(`SELECT ${q(image.layer)} AS v FROM ${q(table.name)} WHERE ${q(xName)} = ? AND ${q(yName)} = ?`).get(image.x, image.y) as {v: unknown} | undefined
    const bytes = row && Buffer.isBuffer(row.v) ? row.v : null
    if (!bytes || hashBytes(bytes) !== image.id) {
      throw new TilesyncError('OBJECT_MISSING', `tile ${image.x},${image.y} ${image.layer} changed in the database while it was read`, {hint: 'run the command again'})
    }
    return bytes
  }

  close(): void {
    this.db?.close()
    this.db = undefined
  }
}
