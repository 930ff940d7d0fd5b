import {TilesyncError} from '../core/errors.js'
import type {ColumnInfo, Commit, DatabaseHeader, Partition, SchemaEntry} from '../snapshot/model.js'
import {checkDatasetPath, DATASET_FORMAT, DATASET_VERSION, type LayerFolder, layerFolders, LIMITS, MANIFEST_PATH} from './layout.js'

/**
 * tilesync/manifest.json: everything besides the rows that a lossless rebuild needs, and the
 * hashes that tie the dataset together. The manifest holds BLAKE3 (and oxen's xxh3) of
 * generations.csv and of every rows file; each rows file holds the BLAKE3 id of every image it
 * references. Rebuilding the tables from the rows must give back `commit.tree` exactly, and
 * the commit fields must hash to `commit.id`, or the dataset is refused.
 */

export interface FileHash {
  b3: string
  xxh3: string
  size: number
}

export interface ManifestTable {
  name: string
  /** The table object's id in tilesync's store (checked after the rebuild). */
  id: string
  columns: ColumnInfo[]
  keyKind: 'pk' | 'rowid'
  key: number[]
  layers: number[]
  partition: Partition
  rowCount: number
  parts: Array<{path: string; rows: number}>
}

export interface ManifestCommit extends Commit {
  id: string
}

export interface Manifest {
  format: typeof DATASET_FORMAT
  version: number
  commit: ManifestCommit
  config: {database?: string; keyColumns?: string[]; imageColumns?: string[]; xyColumns?: [string, string]}
  tileTable: {name: string; x: string; y: string; layers: LayerFolder[]}
  schema: SchemaEntry[]
  /** user_version, application_id and AUTOINCREMENT counters (counters as decimal strings); absent when the commit did not keep them. */
  header?: ManifestHeader
  tables: ManifestTable[]
  files: Record<string, FileHash>
  counts: {tiles: number; images: Record<string, number>}
}

export interface ManifestHeader {
  userVersion: number
  applicationId: number
  sequences: Array<{name: string; seq: string}>
}

export function manifestHeader(h: DatabaseHeader | undefined): ManifestHeader | undefined {
  return h && {userVersion: h.userVersion, applicationId: h.applicationId, sequences: h.sequences.map((s) => ({name: s.name, seq: String(s.seq)}))}
}

export function headerOfManifest(h: ManifestHeader | undefined): DatabaseHeader | undefined {
  if (!h) return undefined
  return {
    userVersion: h.userVersion, applicationId: h.applicationId,
    sequences: h.sequences.map((s) => {
      const n = BigInt(s.seq)
      return {name: s.name, seq: n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n}
    }),
  }
}

export function encodeManifest(m: Manifest): Buffer {
  return Buffer.from(JSON.stringify(m, null, 1) + '\n')
}

const HEX64 = /^[0-9a-f]{64}$/

/** Parses and checks the manifest's shape; every failure is BAD_DATASET naming the field. */
export function parseManifest(bytes: Buffer): Manifest {
  const bad = (why: string) => new TilesyncError('BAD_DATASET', `${MANIFEST_PATH}: ${why}`, {hint: 'the dataset was damaged or tampered with; nothing was changed'})
  if (bytes.length > LIMITS.manifestBytes) throw bad(`too large (${bytes.length} bytes)`)
  let m: Record<string, unknown>
  try {
    m = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
  } catch {
    throw bad('not valid JSON')
  }
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw bad('not a JSON object')
  if (m.format !== DATASET_FORMAT) throw bad(`"format" is not "${DATASET_FORMAT}"`)
  if (m.version !== DATASET_VERSION) {
    throw new TilesyncError('BAD_DATASET', `${MANIFEST_PATH}: dataset format version ${String(m.version)}; this tilesync reads version ${DATASET_VERSION}`, {hint: 'upgrade tilesync'})
  }
  const isStr = (v: unknown): v is string => typeof v === 'string'
  const isInt = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min
  const strArr = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr)

  const c = m.commit as Record<string, unknown> | undefined
  if (!c || typeof c !== 'object') throw bad('no "commit"')
  const author = c.author as Record<string, unknown> | undefined
  const stats = c.stats as Record<string, unknown> | undefined
  if (!isStr(c.id) || !HEX64.test(c.id) || !isStr(c.tree) || !HEX64.test(c.tree)) throw bad('"commit" has no valid id or tree')
  if (!strArr(c.parents) || !c.parents.every((p) => HEX64.test(p))) throw bad('"commit.parents" must be commit ids')
  if (!author || !isStr(author.name) || !isStr(author.email) || !isStr(c.message)) throw bad('"commit" needs author {name, email} and message')
  if (typeof c.timestamp !== 'number' || !Number.isFinite(c.timestamp) || typeof c.tzOffsetMinutes !== 'number') throw bad('"commit" needs timestamp and tzOffsetMinutes')
  if (!stats || !['tilesAdded', 'tilesModified', 'tilesDeleted', 'rowsChanged'].every((k) => isInt(stats[k]))) throw bad('"commit.stats" is incomplete')

  const config = (m.config ?? {}) as Record<string, unknown>
  if (typeof config !== 'object') throw bad('"config" must be an object')
  if (config.database !== undefined && !isStr(config.database)) throw bad('"config.database" must be a string')
  for (const k of ['keyColumns', 'imageColumns'] as const) if (config[k] !== undefined && !strArr(config[k])) throw bad(`"config.${k}" must be a list of names`)
  if (config.xyColumns !== undefined && !(strArr(config.xyColumns) && config.xyColumns.length === 2)) throw bad('"config.xyColumns" must be two names')

  const tt = m.tileTable as Record<string, unknown> | undefined
  if (!tt || !isStr(tt.name) || !isStr(tt.x) || !isStr(tt.y) || !Array.isArray(tt.layers)) throw bad('"tileTable" needs name, x, y and layers')
  const layers = tt.layers as Array<Record<string, unknown>>
  if (!layers.every((l) => l && isStr(l.column) && isStr(l.folder) && isStr(l.csv))) throw bad('"tileTable.layers" entries need column, folder, csv')
  const expected = layerFolders(layers.map((l) => l.column as string))
  if (JSON.stringify(expected) !== JSON.stringify(layers.map((l) => ({column: l.column, folder: l.folder, csv: l.csv})))) {
    throw bad('"tileTable.layers" does not follow the dataset naming rules')
  }

  if (!Array.isArray(m.schema) || !m.schema.every((e) => e && isStr(e.type) && isStr(e.name) && isStr(e.tblName) && isStr(e.sql))) {
    throw bad('"schema" must be a list of {type, name, tblName, sql}')
  }

  if (m.header !== undefined) {
    const h = m.header as Record<string, unknown>
    const isInt32 = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31
    const seqOk = Array.isArray(h?.sequences) && (h.sequences as Array<Record<string, unknown>>).every((s) => s && isStr(s.name) && isStr(s.seq) && /^-?\d{1,19}$/.test(s.seq))
    if (!h || typeof h !== 'object' || !isInt32(h.userVersion) || !isInt32(h.applicationId) || !seqOk) throw bad('"header" needs userVersion, applicationId and sequences [{name, seq}]')
  }

  if (!Array.isArray(m.tables) || m.tables.length === 0) throw bad('"tables" must be a non-empty list')
  const names = new Set<string>()
  for (const t of m.tables as Array<Record<string, unknown>>) {
    if (!t || !isStr(t.name) || names.has(t.name)) throw bad('every table needs a unique name')
    names.add(t.name)
    const where = `table "${t.name}"`
    if (!isStr(t.id) || !HEX64.test(t.id)) throw bad(`${where} has no valid id`)
    if (!Array.isArray(t.columns) || t.columns.length === 0 || !t.columns.every((col) => col && isStr(col.name) && isStr(col.declType))) throw bad(`${where} needs columns [{name, declType}]`)
    const n = t.columns.length
    if (t.keyKind !== 'pk' && t.keyKind !== 'rowid') throw bad(`${where}: keyKind must be pk or rowid`)
    const idx = (v: unknown) => Array.isArray(v) && v.every((i) => isInt(i) && (i as number) < n)
    if (!idx(t.key) || (t.key as number[]).length === 0 || !idx(t.layers)) throw bad(`${where}: key and layers must be column indices`)
    const p = t.partition as Record<string, unknown> | undefined
    if (!p || !((p.kind === 'hash') || (p.kind === 'spatial' && isInt(p.x) && isInt(p.y) && (p.x as number) < n && (p.y as number) < n))) throw bad(`${where}: bad partition`)
    if (!isInt(t.rowCount)) throw bad(`${where}: bad rowCount`)
    if (!Array.isArray(t.parts) || !t.parts.every((part) => part && isStr(part.path) && isInt(part.rows))) throw bad(`${where}: parts must be [{path, rows}]`)
    for (const part of t.parts as Array<{path: string}>) checkDatasetPath(part.path, `${MANIFEST_PATH} (${where})`)
  }
  if (!names.has(tt.name as string)) throw bad(`the tile table "${String(tt.name)}" is not among "tables"`)

  const files = m.files as Record<string, unknown> | undefined
  if (!files || typeof files !== 'object' || Array.isArray(files)) throw bad('"files" must be an object')
  for (const [p, h] of Object.entries(files)) {
    checkDatasetPath(p, MANIFEST_PATH)
    const f = h as Record<string, unknown>
    if (!f || !isStr(f.b3) || !HEX64.test(f.b3) || !isStr(f.xxh3) || !/^[0-9a-f]{1,32}$/.test(f.xxh3) || !isInt(f.size)) throw bad(`"files" entry for ${p} needs b3, xxh3 and size`)
  }
  for (const t of m.tables as ManifestTable[]) for (const part of t.parts) if (!files[part.path]) throw bad(`no hash recorded for ${part.path}`)
  const counts = (m.counts ?? {tiles: 0, images: {}}) as Manifest['counts']
  return {...(m as unknown as Manifest), counts}
}
