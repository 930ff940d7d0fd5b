import {TilesyncError} from '../core/errors.js'
import {hashBytes} from '../core/hash.js'
import type {Db} from '../db/open-database.js'
import type {BlobRef, TableTree} from '../snapshot/model.js'
import {tileXY} from '../snapshot/rows.js'
import type {BBox, TreeReader} from '../snapshot/tree-reader.js'
import type {TreeState, Workspace} from './workspace.js'

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

/** Every image in the tile table of `state` (only `layers`, only inside `bbox` when given), in tree order; NULL cells are skipped. */
export async function* tileImages(state: TreeState, reader: TreeReader, layers?: string[], bbox?: BBox): AsyncGenerator<TileImage> {
  const table = tileTableOf(state)
  if (!table) return
  const wanted = table.layers.filter((li) => !layers || layers.includes(table.columns[li].name))
  for await (const row of reader.rows(table, bbox)) {
    const xy = tileXY(row, table.partition)
    if (!xy || (bbox && (xy[0] < bbox[0] || xy[0] > bbox[2] || xy[1] < bbox[1] || xy[1] > bbox[3]))) continue
    for (const li of wanted) {
      if (row.types[li] === 'b') yield {x: xy[0], y: xy[1], layer: table.columns[li].name, id: (row.values[li] as BlobRef).id}
    }
  }
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
