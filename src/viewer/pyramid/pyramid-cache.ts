import * as fs from 'node:fs'
import * as path from 'node:path'

import Database from 'better-sqlite3'

/**
 * The pyramid's images on disk, in one SQLite file (`.tilesync/cache/pyramid.db`), as an
 * MBTiles file holds a map's tiles: many small images in one file rather than a file each.
 * Every entry is named by what it shows (a tree node's id, or an id derived from node ids),
 * so an entry is never stale and a new revision finds every region it did not change.
 * The builder writes (WAL mode); the HTTP thread reads the same file on its own connection
 * without waiting for the writer. Deleting the file only costs rebuilding.
 *
 * Next to each image its half-size copy (raw RGBA), what its parent is made of: making a
 * parent over a changed region reads its unchanged quarters from here, decoding nothing.
 * `cells` holds each tile image shrunk to a map cell (by image id), so rebuilding a leaf
 * where one tile changed decodes one image, not 256.
 *
 * Rows are large (tens of KB), so the tables keep their keys in a separate index (a
 * lookup never walks the blobs), and writes are batched into one transaction per few dozen
 * images; what is not written yet is served from memory.
 */

/** Bumped whenever what an image looks like for a key, or the file's layout, changes: older files are emptied. */
const FORMAT = 3

/** Images held back before one write transaction. */
const BATCH = 48

interface Pending {
  bytes: Buffer
  half: Buffer | null
}

export class PyramidCache {
  private readonly db: Database.Database
  private readonly getImage: Database.Statement<[string, string], {bytes: Buffer}>
  private readonly hasImage: Database.Statement<[string, string], {one: number}>
  private readonly getHalf: Database.Statement<[string, string], {half: Buffer | null}>
  private readonly putImage?: Database.Statement<[string, string, Buffer, Buffer | null]>
  private readonly getCells: Database.Statement<[number, string], {id: string; rgba: Buffer}>
  private readonly putCell?: Database.Statement<[string, number, Buffer]>
  private readonly pending = new Map<string, Pending>()
  private flushTimer?: NodeJS.Timeout

  private constructor(db: Database.Database, readonly file: string, readonly writable: boolean) {
    this.db = db
    this.getImage = db.prepare('SELECT bytes FROM images WHERE layer = ? AND key = ?')
    this.hasImage = db.prepare('SELECT 1 AS one FROM images WHERE layer = ? AND key = ?')
    this.getHalf = db.prepare('SELECT half FROM images WHERE layer = ? AND key = ?')
    this.getCells = db.prepare('SELECT id, rgba FROM cells WHERE edge = ? AND id IN (SELECT value FROM json_each(?))')
    if (writable) {
      this.putImage = db.prepare('INSERT OR REPLACE INTO images (layer, key, bytes, half) VALUES (?, ?, ?, ?)')
      this.putCell = db.prepare('INSERT OR REPLACE INTO cells (id, edge, rgba) VALUES (?, ?, ?)')
    }
  }

  /**
   * The builder's connection: creates the file when missing. A repository that cannot be
   * written (read-only directory, full disk) gets a cache in memory instead.
   */
  static openForWriting(file: string): PyramidCache {
    try {
      fs.mkdirSync(path.dirname(file), {recursive: true})
      const db = new Database(file, {timeout: 5_000})
      try {
        // Set before the first table exists: large pages suit tens-of-KB rows.
        db.pragma('page_size = 16384')
        db.pragma('journal_mode = WAL')
        db.pragma('synchronous = NORMAL')
        prepareSchema(db)
      } catch (error) {
        db.close()
        throw error
      }
      return new PyramidCache(db, file, true)
    } catch {
      const db = new Database(':memory:')
      prepareSchema(db)
      return new PyramidCache(db, ':memory:', true)
    }
  }

  /** A reader's connection to a file the builder made; undefined when there is none (yet). */
  static openForReading(file: string): PyramidCache | undefined {
    if (!fs.existsSync(file)) return undefined
    try {
      const db = new Database(file, {readonly: true, fileMustExist: true, timeout: 5_000})
      const version = db.pragma('user_version', {simple: true}) as number
      if (version !== FORMAT) {
        db.close()
        return undefined
      }
      return new PyramidCache(db, file, false)
    } catch {
      return undefined
    }
  }

  image(layer: string, key: string): Buffer | undefined {
    return this.pending.get(`${layer}\n${key}`)?.bytes ?? this.getImage.get(layer, key)?.bytes
  }

  has(layer: string, key: string): boolean {
    return this.pending.has(`${layer}\n${key}`) || this.hasImage.get(layer, key) !== undefined
  }

  /** The half-size copy of a cached image, raw RGBA; undefined for images kept without one. */
  half(layer: string, key: string): Buffer | undefined {
    const p = this.pending.get(`${layer}\n${key}`)
    if (p) return p.half ?? undefined
    return this.getHalf.get(layer, key)?.half ?? undefined
  }

  /** Keeps an image; it reaches the file with the next batch (at most a moment later). */
  put(layer: string, key: string, bytes: Buffer, half: Buffer | null = null): void {
    if (!this.putImage) return
    this.pending.set(`${layer}\n${key}`, {bytes, half})
    if (this.pending.size >= BATCH) this.flush()
    else this.flushTimer ??= setTimeout(() => this.flush(), 100)
  }

  /** Writes the images held back, in one transaction. */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    if (!this.putImage || this.pending.size === 0 || !this.db.open) return
    const put = this.putImage
    const batch = [...this.pending]
    this.db.transaction(() => {
      for (const [id, p] of batch) {
        const cut = id.indexOf('\n')
        put.run(id.slice(0, cut), id.slice(cut + 1), p.bytes, p.half)
      }
    })()
    for (const [id, p] of batch) if (this.pending.get(id) === p) this.pending.delete(id)
  }

  /** Many cells in one query (a leaf's worth), by image id; ids without a cell are left out. */
  cells(ids: string[], edge: number): Map<string, Buffer> {
    const out = new Map<string, Buffer>()
    if (ids.length === 0) return out
    for (const row of this.getCells.all(edge, JSON.stringify(ids))) out.set(row.id, row.rgba)
    return out
  }

  putCells(cells: Array<{id: string; edge: number; rgba: Buffer}>): void {
    if (!this.putCell || cells.length === 0) return
    const put = this.putCell
    this.db.transaction(() => {
      for (const c of cells) put.run(c.id, c.edge, c.rgba)
    })()
  }

  close(): void {
    try {
      this.flush()
    } catch {
      // A full disk: what was held back is only lost from the cache.
    }
    if (this.db.open) this.db.close()
  }
}

function prepareSchema(db: Database.Database): void {
  const version = db.pragma('user_version', {simple: true}) as number
  if (version !== FORMAT) {
    db.exec('DROP TABLE IF EXISTS images; DROP TABLE IF EXISTS cells;')
  }
  db.exec(`
    CREATE TABLE IF NOT EXISTS images (n INTEGER PRIMARY KEY, layer TEXT NOT NULL, key TEXT NOT NULL, bytes BLOB NOT NULL, half BLOB, UNIQUE (layer, key));
    CREATE TABLE IF NOT EXISTS cells (n INTEGER PRIMARY KEY, id TEXT NOT NULL, edge INTEGER NOT NULL, rgba BLOB NOT NULL, UNIQUE (id, edge));
  `)
  if (version !== FORMAT) db.pragma(`user_version = ${FORMAT}`)
}
