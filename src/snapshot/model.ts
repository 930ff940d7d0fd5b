import {decode, encode} from '../core/codec.js'
import {TilesyncError} from '../core/errors.js'

/**
 * The stored object model. Four kinds of structured object sit above the blobs (raw PNG
 * bytes and other BLOB cells):
 *
 *   commit   -> snapshot -> table (one per versioned table) -> node (root, level 2)
 *                                                              -> node (level 1) -> leaf (level 0, rows)
 *
 * Each is a positional msgpack array starting with a type tag and a format version, so a
 * reader can tell what it holds and refuse what it does not understand.
 */

export interface BlobRef {
  id: string
  size: number
}

/** A cell: NULL, INTEGER (number when safe, else bigint), REAL, TEXT, or a BLOB stored as an object. */
export type Cell = null | number | bigint | string | BlobRef

/**
 * One row: `types` has one letter per stored column (n=null, i=integer, r=real, t=text,
 * b=blob) because msgpack alone cannot tell INTEGER 40 from REAL 40.0, and a rollback must
 * give back exactly what SQLite held.
 */
export interface Row {
  types: string
  values: Cell[]
}

export interface Author {
  name: string
  email: string
}

export interface CommitStats {
  tilesAdded: number
  tilesModified: number
  tilesDeleted: number
  rowsChanged: number
}

export interface Commit {
  tree: string
  parents: string[]
  author: Author
  timestamp: number
  tzOffsetMinutes: number
  message: string
  stats: CommitStats
}

export interface SchemaEntry {
  type: string
  name: string
  tblName: string
  sql: string
}

/**
 * What a database holds besides its tables' rows: the header fields applications use for
 * their own bookkeeping (`PRAGMA user_version`, the schema version migrations check;
 * `PRAGMA application_id`, e.g. MBTiles') and SQLite's AUTOINCREMENT counters (rows of
 * `sqlite_sequence`, so a clone never reuses an id that was handed out before).
 */
export interface DatabaseHeader {
  userVersion: number
  applicationId: number
  sequences: Array<{name: string; seq: number | bigint}>
}

export interface Snapshot {
  schema: SchemaEntry[]
  tables: Array<{name: string; id: string}>
  tileTable: string | null
  /** Absent in snapshots written before it was kept (format 1): then nothing is known of it. */
  header?: DatabaseHeader
}

export interface ColumnInfo {
  name: string
  declType: string
}

export type Partition = {kind: 'spatial'; x: number; y: number} | {kind: 'hash'}

export interface TableTree {
  name: string
  /** Stored columns in order; for rowid-keyed tables the first is the rowid itself. */
  columns: ColumnInfo[]
  keyKind: 'pk' | 'rowid'
  /** Indices into `columns` that form the row key. */
  key: number[]
  /** Indices of image (layer) columns; empty for non-tile tables. */
  layers: number[]
  partition: Partition
  root: string | null
  rowCount: number
}

export interface NodeEntry {
  label: string
  id: string
  rows: number
}

export type TreeNode = {level: 1 | 2; entries: NodeEntry[]} | {level: 0; rows: Row[]}

const TAG_COMMIT = 'tilesync.commit'
const TAG_SNAPSHOT = 'tilesync.snapshot'
const TAG_TABLE = 'tilesync.table'
const TAG_NODE = 'tilesync.node'
const FORMAT = 1
/** Snapshots carry the database header from format 2 on; format 1 snapshots still read. */
const SNAPSHOT_FORMAT = 2

const idBytes = (hex: string): Buffer => Buffer.from(hex, 'hex')
const idHex = (value: unknown, what: string): string => {
  if (!(value instanceof Uint8Array) || value.length !== 32) throw malformed(what)
  return Buffer.from(value).toString('hex')
}

function malformed(what: string): TilesyncError {
  return new TilesyncError('OBJECT_CORRUPT', `stored object is not a valid ${what}`, {
    hint: 'run `tilesync fsck` to find damaged objects',
  })
}

function expectTagged(bytes: Uint8Array, tag: string, what: string, newest = FORMAT): unknown[] {
  let value: unknown
  try {
    value = decode(bytes)
  } catch {
    throw malformed(what)
  }
  if (!Array.isArray(value) || value[0] !== tag) throw malformed(what)
  if (typeof value[1] !== 'number' || !Number.isInteger(value[1]) || value[1] < 1 || value[1] > newest) {
    throw new TilesyncError('OBJECT_CORRUPT', `${what} uses format ${String(value[1])}, this tilesync reads formats up to ${newest}`, {
      hint: 'upgrade tilesync',
    })
  }
  return value
}

const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string') throw malformed(what)
  return v
}
const num = (v: unknown, what: string): number => {
  if (typeof v === 'bigint') return Number(v)
  if (typeof v !== 'number') throw malformed(what)
  return v
}
const arr = (v: unknown, what: string): unknown[] => {
  if (!Array.isArray(v)) throw malformed(what)
  return v
}

// ---- rows ----------------------------------------------------------------

/**
 * msgpack writes every number that equals an integer as an integer, and -0 equals 0: REAL
 * -0.0 is kept as its 8 IEEE-754 bytes instead. Every other value is encoded as before, so
 * the ids of leaves without a -0.0 do not change.
 */
const NEGATIVE_ZERO = Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0])

function encodeCell(type: string, v: Cell): unknown {
  if (type === 'b') return [idBytes((v as BlobRef).id), (v as BlobRef).size]
  if (type === 'r' && Object.is(v, -0)) return NEGATIVE_ZERO
  return v
}

export function encodeRowValue(row: Row): unknown[] {
  return [row.types, row.values.map((v, i) => encodeCell(row.types[i], v))]
}

function decodeReal(v: unknown): number {
  if (v instanceof Uint8Array && v.length === 8) return Buffer.from(v).readDoubleBE(0)
  return num(v, 'row')
}

export function decodeRowValue(value: unknown): Row {
  const parts = arr(value, 'row')
  const types = str(parts[0], 'row')
  const raw = arr(parts[1], 'row')
  if (raw.length !== types.length) throw malformed('row')
  const values: Cell[] = raw.map((v, i) => {
    switch (types[i]) {
      case 'n': return null
      case 'i': return typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : v) : num(v, 'row')
      case 'r': return decodeReal(v)
      case 't': return str(v, 'row')
      case 'b': {
        const pair = arr(v, 'row')
        return {id: idHex(pair[0], 'row'), size: num(pair[1], 'row')}
      }
      default: throw malformed('row')
    }
  })
  return {types, values}
}

// ---- commit --------------------------------------------------------------

export function encodeCommit(c: Commit): Buffer {
  return encode([
    TAG_COMMIT, FORMAT, idBytes(c.tree), c.parents.map(idBytes), c.author.name, c.author.email,
    c.timestamp, c.tzOffsetMinutes, c.message,
    [c.stats.tilesAdded, c.stats.tilesModified, c.stats.tilesDeleted, c.stats.rowsChanged],
  ])
}

export function decodeCommit(bytes: Uint8Array): Commit {
  const v = expectTagged(bytes, TAG_COMMIT, 'commit')
  const stats = arr(v[9], 'commit').map((n) => num(n, 'commit'))
  return {
    tree: idHex(v[2], 'commit'),
    parents: arr(v[3], 'commit').map((p) => idHex(p, 'commit')),
    author: {name: str(v[4], 'commit'), email: str(v[5], 'commit')},
    timestamp: num(v[6], 'commit'),
    tzOffsetMinutes: num(v[7], 'commit'),
    message: str(v[8], 'commit'),
    stats: {tilesAdded: stats[0] ?? 0, tilesModified: stats[1] ?? 0, tilesDeleted: stats[2] ?? 0, rowsChanged: stats[3] ?? 0},
  }
}

// ---- snapshot ------------------------------------------------------------

export function encodeSnapshot(s: Snapshot): Buffer {
  const fields: unknown[] = [
    TAG_SNAPSHOT, s.header ? SNAPSHOT_FORMAT : FORMAT,
    s.schema.map((e) => [e.type, e.name, e.tblName, e.sql]),
    s.tables.map((t) => [t.name, idBytes(t.id)]),
    s.tileTable,
  ]
  if (s.header) fields.push([s.header.userVersion, s.header.applicationId, s.header.sequences.map((q) => [q.name, q.seq])])
  return encode(fields)
}

function decodeHeader(v: unknown): DatabaseHeader {
  const p = arr(v, 'snapshot')
  return {
    userVersion: num(p[0], 'snapshot'),
    applicationId: num(p[1], 'snapshot'),
    sequences: arr(p[2], 'snapshot').map((q) => {
      const e = arr(q, 'snapshot')
      const seq = e[1]
      if (typeof seq !== 'number' && typeof seq !== 'bigint') throw malformed('snapshot')
      return {name: str(e[0], 'snapshot'), seq}
    }),
  }
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const v = expectTagged(bytes, TAG_SNAPSHOT, 'snapshot', SNAPSHOT_FORMAT)
  return {
    ...(v[1] === SNAPSHOT_FORMAT ? {header: decodeHeader(v[5])} : {}),
    schema: arr(v[2], 'snapshot').map((e) => {
      const p = arr(e, 'snapshot')
      return {type: str(p[0], 'snapshot'), name: str(p[1], 'snapshot'), tblName: str(p[2], 'snapshot'), sql: str(p[3], 'snapshot')}
    }),
    tables: arr(v[3], 'snapshot').map((t) => {
      const p = arr(t, 'snapshot')
      return {name: str(p[0], 'snapshot'), id: idHex(p[1], 'snapshot')}
    }),
    tileTable: v[4] === null ? null : str(v[4], 'snapshot'),
  }
}

// ---- table ---------------------------------------------------------------

export function encodeTable(t: TableTree): Buffer {
  const partition = t.partition.kind === 'spatial' ? ['spatial', t.partition.x, t.partition.y] : ['hash']
  return encode([
    TAG_TABLE, FORMAT, t.name, t.columns.map((c) => [c.name, c.declType]), t.keyKind, t.key, t.layers,
    partition, t.root === null ? null : idBytes(t.root), t.rowCount,
  ])
}

export function decodeTable(bytes: Uint8Array): TableTree {
  const v = expectTagged(bytes, TAG_TABLE, 'table')
  const p = arr(v[7], 'table')
  const keyKind = str(v[4], 'table')
  if (keyKind !== 'pk' && keyKind !== 'rowid') throw malformed('table')
  return {
    name: str(v[2], 'table'),
    columns: arr(v[3], 'table').map((c) => {
      const q = arr(c, 'table')
      return {name: str(q[0], 'table'), declType: str(q[1], 'table')}
    }),
    keyKind,
    key: arr(v[5], 'table').map((n) => num(n, 'table')),
    layers: arr(v[6], 'table').map((n) => num(n, 'table')),
    partition: p[0] === 'spatial' ? {kind: 'spatial', x: num(p[1], 'table'), y: num(p[2], 'table')} : {kind: 'hash'},
    root: v[8] === null ? null : idHex(v[8], 'table'),
    rowCount: num(v[9], 'table'),
  }
}

// ---- nodes ---------------------------------------------------------------

export function encodeNode(n: TreeNode): Buffer {
  if (n.level === 0) return encode([TAG_NODE, FORMAT, 0, n.rows.map(encodeRowValue)])
  return encode([TAG_NODE, FORMAT, n.level, n.entries.map((e) => [e.label, idBytes(e.id), e.rows])])
}

export function decodeNode(bytes: Uint8Array): TreeNode {
  const v = expectTagged(bytes, TAG_NODE, 'tree node')
  const level = num(v[2], 'tree node')
  const items = arr(v[3], 'tree node')
  if (level === 0) return {level: 0, rows: items.map(decodeRowValue)}
  if (level !== 1 && level !== 2) throw malformed('tree node')
  return {
    level,
    entries: items.map((e) => {
      const p = arr(e, 'tree node')
      return {label: str(p[0], 'tree node'), id: idHex(p[1], 'tree node'), rows: num(p[2], 'tree node')}
    }),
  }
}

/**
 * A leaf's rows seen through a few columns, without building rows: for each row whose
 * `xi`/`yi` cells are integers, `visit` gets them and, per entry of `blobColumns`, the blob id
 * there (hex) or null. Scans of every tile of a city (similar, duplicates) decode 100,000 rows
 * this way at a fraction of decodeNode's cost and garbage.
 */
export function scanLeafBlobs(bytes: Uint8Array, xi: number, yi: number, blobColumns: number[], visit: (x: number, y: number, ids: Array<string | null>) => void): void {
  const v = expectTagged(bytes, TAG_NODE, 'tree node')
  if (num(v[2], 'tree node') !== 0) throw malformed('tree node')
  const ids: Array<string | null> = blobColumns.map(() => null)
  for (const item of arr(v[3], 'tree node')) {
    const parts = arr(item, 'row')
    const types = str(parts[0], 'row')
    const raw = arr(parts[1], 'row')
    if (raw.length !== types.length) throw malformed('row')
    if (types[xi] !== 'i' || types[yi] !== 'i') continue
    for (let k = 0; k < blobColumns.length; k++) {
      const c = blobColumns[k]
      ids[k] = types[c] === 'b' ? idHex(arr(raw[c], 'row')[0], 'row') : null
    }
    visit(Number(raw[xi]), Number(raw[yi]), ids)
  }
}

/** Ids an object refers to, for walks that do not care about meaning (fsck, gc, transfer). */
export function childIds(kind: 'commit' | 'snapshot' | 'table' | 'node', bytes: Uint8Array): string[] {
  switch (kind) {
    case 'commit': return [decodeCommit(bytes).tree]
    case 'snapshot': return decodeSnapshot(bytes).tables.map((t) => t.id)
    case 'table': {
      const root = decodeTable(bytes).root
      return root === null ? [] : [root]
    }
    case 'node': {
      const n = decodeNode(bytes)
      if (n.level > 0) return (n as {entries: NodeEntry[]}).entries.map((e) => e.id)
      const ids: string[] = []
      for (const row of (n as {rows: Row[]}).rows) {
        for (let i = 0; i < row.types.length; i++) if (row.types[i] === 'b') ids.push((row.values[i] as BlobRef).id)
      }
      return ids
    }
  }
}
