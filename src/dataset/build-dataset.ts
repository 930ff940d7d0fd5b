import {stringify} from 'csv-stringify/sync'

import {TilesyncError} from '../core/errors.js'
import {hashBytes} from '../core/hash.js'
import type {RepoConfig} from '../repo/config.js'
import {xxh3_128Hex} from './xxh3.js'
import type {BlobRef, Row, TableTree} from '../snapshot/model.js'
import type {BBox, TreeReader} from '../snapshot/tree-reader.js'
import type {ObjectReader} from '../store/object-store.js'
import {type FileHash, type Manifest, type ManifestTable, encodeManifest, manifestHeader} from './manifest.js'
import {blobPath, CSV_PATH, csvHeader, DATASET_FORMAT, DATASET_VERSION, imageName, type LayerFolder, layerFolders, leafFileName, MANIFEST_PATH, README_PATH, tableRowsDir} from './layout.js'
import type {Md5Cache} from './md5-cache.js'
import {encodeRowLine} from './rows-file.js'

/** A small file of the dataset, built in memory (CSV, README, manifest, rows files). */
export interface DatasetText {
  path: string
  bytes: Buffer
}

/** The whole dataset for one commit: small files as bytes, images and blobs as store references. */
export interface DatasetPlan {
  commitId: string
  manifest: Manifest
  texts: DatasetText[]
  /** Dataset path -> blob (image layers and tilesync/blobs/*). */
  blobs: Map<string, BlobRef>
  layers: LayerFolder[]
  tiles: number
}

export interface BuildOptions {
  store: ObjectReader
  md5: Md5Cache
  config: Pick<RepoConfig, 'database' | 'keyColumns' | 'imageColumns' | 'xyColumns'>
  /** Shown as the README title (the oxen repository name, or the folder name). */
  title: string
  /**
   * Only the tiles inside x0,y0,x1,y1 (inclusive): generations.csv and their images, no
   * tilesync/ (its manifest records every row), so importing the folder is additive.
   */
  bbox?: BBox
}

/** Column pairs read as x, y when the tile table's key is not (x, y) itself (as in table-spec.ts). */
const XY_NAMES: Array<[string, string]> = [
  ['quadrant_x', 'quadrant_y'], ['tile_x', 'tile_y'], ['x', 'y'], ['col', 'row'], ['tile_col', 'tile_row'], ['column', 'row'],
]

/** Which columns give a tile's x and y for file names and the CSV. */
export function tileXYColumns(table: TableTree, xyColumns?: [string, string]): [number, number] {
  if (table.partition.kind === 'spatial') return [table.partition.x, table.partition.y]
  const names = table.columns.map((c) => c.name)
  const pair = xyColumns ?? XY_NAMES.find(([x, y]) => names.includes(x) && names.includes(y))
  const xi = pair ? names.indexOf(pair[0]) : -1
  const yi = pair ? names.indexOf(pair[1]) : -1
  if (xi < 0 || yi < 0) {
    throw new TilesyncError('BAD_DATASET', `cannot lay out "${table.name}" as a dataset: no x, y columns to name its image files by`, {
      hint: 'set them with `tilesync init --xy X,Y`',
    })
  }
  return [xi, yi]
}

export function fileHash(bytes: Buffer): FileHash {
  return {b3: hashBytes(bytes), xxh3: xxh3_128Hex(bytes), size: bytes.length}
}

/**
 * Lays out commit `commitId` as a dataset: every table's rows (one JSONL file per tree leaf),
 * generations.csv, README.md and the manifest. Images are not read except to learn the MD5 of
 * blobs the cache has never seen.
 */
export async function buildDataset(reader: TreeReader, commitId: string, options: BuildOptions): Promise<DatasetPlan> {
  const {commit, snapshot, tables, tableIds} = await reader.tablesOf(commitId)
  const tileName = snapshot.tileTable
  const tile = tileName ? tables.get(tileName) : undefined
  if (!tileName || !tile) throw new TilesyncError('BAD_DATASET', `commit ${commitId.slice(0, 10)} has no tile table to lay out`)
  const layers = layerFolders(tile.layers.map((i) => tile.columns[i].name))
  const layerAt = new Map(tile.layers.map((col, i) => [col, layers[i]]))
  const [xi, yi] = tileXYColumns(tile, options.config.xyColumns)

  const texts: DatasetText[] = []
  const blobs = new Map<string, BlobRef>()
  const files: Record<string, FileHash> = {}
  const csvRecords: Array<{x: bigint; y: bigint; cells: string[]}> = []
  const imageCounts: Record<string, number> = Object.fromEntries(layers.map((l) => [l.folder, 0]))
  const manifestTables: ManifestTable[] = []

  const bbox = options.bbox
  for (const {name} of snapshot.tables) {
    const table = tables.get(name)!
    const isTile = name === tileName
    if (bbox) {
      if (isTile) await regionRecords(reader, tile, bbox, {layers, layerAt, xi, yi, md5: options.md5, store: options.store, blobs, csvRecords, imageCounts})
      continue
    }
    const dir = tableRowsDir(name)
    const parts: ManifestTable['parts'] = []
    for (const mid of await reader.innerEntries(table.root)) {
      for (const leaf of await reader.innerEntries(mid.id)) {
        const lines: string[] = []
        for (const row of await reader.leafRows(leaf.id)) {
          const paths = new Map<number, string>()
          for (let i = 0; i < row.types.length; i++) {
            if (row.types[i] !== 'b') continue
            const ref = row.values[i] as BlobRef
            const layer = isTile ? layerAt.get(i) : undefined
            if (layer) {
              const [x, y] = xyOf(row, xi, yi, table)
              const p = `${layer.folder}/${imageName(x, y, await options.md5.md5Of(ref.id, options.store))}`
              paths.set(i, p)
              blobs.set(p, ref)
            } else {
              blobs.set(blobPath(ref.id), ref)
            }
          }
          if (isTile) csvRecords.push(csvRecord(row, layers, tile.layers, paths, xi, yi, table, imageCounts))
          lines.push(encodeRowLine(row, (i) => paths.get(i)))
        }
        const p = `${dir}/${leafFileName(leaf.label)}`
        const bytes = Buffer.from(lines.join('\n') + '\n')
        texts.push({path: p, bytes})
        files[p] = fileHash(bytes)
        parts.push({path: p, rows: lines.length})
      }
    }
    manifestTables.push({
      name, id: tableIds.get(name)!, columns: table.columns, keyKind: table.keyKind, key: table.key, layers: table.layers,
      partition: table.partition, rowCount: table.rowCount, parts,
    })
  }

  csvRecords.sort((a, b) => (a.y < b.y ? -1 : a.y > b.y ? 1 : a.x < b.x ? -1 : a.x > b.x ? 1 : a.cells.join() < b.cells.join() ? -1 : 1))
  const csv = Buffer.from(stringify([csvHeader(layers), ...csvRecords.map((r) => r.cells)], {record_delimiter: '\n'}))
  texts.push({path: CSV_PATH, bytes: csv})
  files[CSV_PATH] = fileHash(csv)

  const c = options.config
  const manifest: Manifest = {
    format: DATASET_FORMAT,
    version: DATASET_VERSION,
    commit: {id: commitId, ...commit},
    config: {
      ...(c.database && !c.database.startsWith('/') && !c.database.includes('..') ? {database: c.database} : {}),
      ...(c.keyColumns?.length ? {keyColumns: c.keyColumns} : {}),
      ...(c.imageColumns?.length ? {imageColumns: c.imageColumns} : {}),
      ...(c.xyColumns ? {xyColumns: c.xyColumns} : {}),
    },
    tileTable: {name: tileName, x: tile.columns[xi].name, y: tile.columns[yi].name, layers},
    schema: snapshot.schema,
    ...(snapshot.header ? {header: manifestHeader(snapshot.header)} : {}),
    tables: manifestTables,
    files,
    counts: {tiles: tile.rowCount, images: imageCounts},
  }
  if (bbox) {
    manifest.counts.tiles = csvRecords.length
    texts.push({path: README_PATH, bytes: Buffer.from(readme(options.title, manifest, layers, bbox))})
  } else {
    texts.push({path: MANIFEST_PATH, bytes: encodeManifest(manifest)})
    texts.push({path: README_PATH, bytes: Buffer.from(readme(options.title, manifest, layers))})
  }
  await options.md5.flush()
  return {commitId, manifest, texts, blobs, layers, tiles: bbox ? csvRecords.length : tile.rowCount}
}

/** The CSV lines and images of the tiles inside `bbox` (only leaves that can overlap it are read). */
async function regionRecords(reader: TreeReader, tile: TableTree, bbox: BBox, out: {
  layers: LayerFolder[]; layerAt: Map<number, LayerFolder>; xi: number; yi: number; md5: Md5Cache; store: ObjectReader
  blobs: Map<string, BlobRef>; csvRecords: Array<{x: bigint; y: bigint; cells: string[]}>; imageCounts: Record<string, number>
}): Promise<void> {
  for await (const row of reader.rows(tile, tile.partition.kind === 'spatial' ? bbox : undefined)) {
    if (row.types[out.xi] !== 'i' || row.types[out.yi] !== 'i') continue
    const [x, y] = xyOf(row, out.xi, out.yi, tile)
    if (x < BigInt(bbox[0]) || x > BigInt(bbox[2]) || y < BigInt(bbox[1]) || y > BigInt(bbox[3])) continue
    const paths = new Map<number, string>()
    for (const [col, layer] of out.layerAt) {
      if (row.types[col] !== 'b') continue
      const ref = row.values[col] as BlobRef
      const p = `${layer.folder}/${imageName(x, y, await out.md5.md5Of(ref.id, out.store))}`
      paths.set(col, p)
      out.blobs.set(p, ref)
    }
    out.csvRecords.push(csvRecord(row, out.layers, tile.layers, paths, out.xi, out.yi, tile, out.imageCounts))
  }
}

function xyOf(row: Row, xi: number, yi: number, table: TableTree): [bigint, bigint] {
  if (row.types[xi] !== 'i' || row.types[yi] !== 'i') {
    throw new TilesyncError('BAD_DATASET', `a row of "${table.name}" has no integer ${table.columns[xi].name}, ${table.columns[yi].name}: its images cannot be named`, {
      hint: 'give every tile integer coordinates',
    })
  }
  return [BigInt(row.values[xi] as number | bigint), BigInt(row.values[yi] as number | bigint)]
}

function csvRecord(row: Row, layers: LayerFolder[], layerCols: number[], paths: Map<number, string>, xi: number, yi: number, table: TableTree, counts: Record<string, number>) {
  const [x, y] = xyOf(row, xi, yi, table)
  const ps = layerCols.map((col) => paths.get(col) ?? '')
  ps.forEach((p, i) => {
    if (p) counts[layers[i].folder]++
  })
  const hashes = ps.map((p) => (p ? p.slice(-12, -4) : ''))
  return {x, y, cells: [...ps, x.toString(), y.toString(), ...hashes]}
}

function readme(title: string, m: Manifest, layers: LayerFolder[], bbox?: BBox): string {
  const when = new Date(m.commit.timestamp).toISOString()
  const first = m.commit.message.split('\n')[0].replace(/\|/g, '\\|')
  const header = csvHeader(layers).join(',')
  const lines = [
    `# ${title}`,
    '',
    `Map tiles of the \`${m.tileTable.name}\` table, versioned with tilesync: every image as a PNG file and one line of`,
    '`generations.csv` per tile.',
    '',
    '| | |',
    '|---|---|',
    `| tiles | ${m.counts.tiles} |`,
    ...layers.map((l) => `| \`${l.folder}/\` (${l.column}) | ${m.counts.images[l.folder] ?? 0} images |`),
    `| last update | ${when} |`,
    `| tilesync commit | \`${m.commit.id.slice(0, 12)}\` ${first} |`,
    '',
    '## Files',
    '',
    `- \`generations.csv\`: \`${header}\`, one line per tile; a path is empty when the tile has no image in that layer.`,
    ...layers.map((l) => `- \`${l.folder}/<x>_<y>_<hash>.png\`: the \`${l.column}\` image of tile x, y (x and y zero-padded to 4 characters, \`-012\` for -12; hash = first 8 hex digits of the file's MD5).`),
    ...(bbox
      ? [`- The tiles inside x ${bbox[0]}..${bbox[2]}, y ${bbox[1]}..${bbox[3]} only, without \`tilesync/\`: \`tilesync import\` of this folder`,
        '  adds and updates these tiles and deletes none.']
      : ['- `tilesync/`: what tilesync needs to rebuild the database exactly (schema, every column and table as typed',
        '  rows, commit ids, BLAKE3 ids of every file). Edit `generations.csv` and the images; leave `tilesync/` to tilesync.']),
    '',
    'Files of tiles that no longer exist stay in the folders unless the dataset was pushed with `--prune`.',
    '',
  ]
  return lines.join('\n')
}
