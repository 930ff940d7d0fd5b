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
 * `cells` holds each tile image shrunk to a map cell (by image id), so rebuilding a leaf
 * where one tile changed decodes one image, not 256.
 */

/** Bumped whenever what an image looks like for a key changes: older files are emptied. */
const FORMAT = 1

export class PyramidCache {
  private readonly db: Database.Database
  private readonly getImage: Database.Statement<[string, string], {bytes: Buffer}>
  private readonly hasImage: Database.Statement<[string, string], {one: number}>
  private readonly putImage?: Database.Statement<[string, string, Buffer]>
  private readonly getCell: Database.Statement<[string, number], {rgba: Buffer}>
  private readonly putCell?: Database.Statement<[string, number, Buffer]>

  private constructor(db: Database.Database, readonly file: string, readonly writable: boolean) {
    this.db = db
    this.getImage = db.prepare('SELECT bytes FROM images WHERE layer = ? AND key = ?')
    this.hasImage = db.prepare('SELECT 1 AS one FROM images WHERE layer = ? AND key = ?')
    this.getCell = db.prepare('SELECT rgba FROM cells WHERE id = ? AND edge = ?')
    if (writable) {
      this.putImage = db.prepare('INSERT OR REPLACE INTO images (layer, key, bytes) VALUES (?, ?, ?)')
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
    return this.getImage.get(layer, key)?.bytes
  }

  has(layer: string, key: string): boolean {
    return this.hasImage.get(layer, key) !== undefined
  }

  put(layer: string, key: string, bytes: Buffer): void {
    this.putImage?.run(layer, key, bytes)
  }

  cell(id: string, edge: number): Buffer | undefined {
    return this.getCell.get(id, edge)?.rgba
  }

  putCells(cells: Array<{id: string; edge: number; rgba: Buffer}>): void {
    if (!this.putCell || cells.length === 0) return
    const put = this.putCell
    this.db.transaction(() => {
      for (const c of cells) put.run(c.id, c.edge, c.rgba)
    })()
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}

function prepareSchema(db: Database.Database): void {
  const version = db.pragma('user_version', {simple: true}) as number
  if (version !== FORMAT) {
    db.exec('DROP TABLE IF EXISTS images; DROP TABLE IF EXISTS cells;')
  }
  db.exec(`
    CREATE TABLE IF NOT EXISTS images (layer TEXT NOT NULL, key TEXT NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (layer, key)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS cells (id TEXT NOT NULL, edge INTEGER NOT NULL, rgba BLOB NOT NULL, PRIMARY KEY (id, edge)) WITHOUT ROWID;
  `)
  if (version !== FORMAT) db.pragma(`user_version = ${FORMAT}`)
}
