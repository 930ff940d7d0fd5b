import {constants as fsc} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import {checkDatasetPath, classifyPath, LIMITS} from './layout.js'

/**
 * Where a dataset is read from: a local folder (import) or one commit of an oxen repository
 * (pull, clone). Reading is the only operation; every path has already been checked by
 * checkDatasetPath before it gets here.
 */
export interface DatasetSource {
  /** For messages: the folder, or host/namespace/repo@commit. */
  readonly label: string
  /**
   * True for a local folder: every file the dataset names is read and verified even when the
   * object store already has it, so a damaged folder is refused rather than silently patched.
   */
  readonly verifyAll: boolean
  exists(p: string): Promise<boolean>
  /** The file's bytes; BAD_DATASET when it is missing or larger than `maxBytes`. */
  read(p: string, maxBytes: number): Promise<Buffer>
  /** oxen's xxh3 of the file when known without downloading it (hub listings); null when absent. */
  quickHash?(p: string): Promise<string | null>
  /** Files and bytes read so far. */
  readonly stats: {files: number; bytes: number}
}

export function missingFile(label: string, p: string): TilesyncError {
  return new TilesyncError('BAD_DATASET', `${label}: ${p} is missing`, {hint: 'the dataset is incomplete; nothing was changed'})
}

export function tooLarge(label: string, p: string, size: number, max: number): TilesyncError {
  return new TilesyncError('BAD_DATASET', `${label}: ${p} is ${size} bytes, more than the ${max} a dataset file may have`, {hint: 'refusing an absurd size; nothing was changed'})
}

/**
 * A dataset folder on disk. Opening walks it once without following anything: a symbolic
 * link anywhere is refused (HOSTILE_PATH), as is anything that is not a plain file or folder.
 * Dotfiles and dot-folders (.DS_Store, an oxen clone's .oxen/) are skipped.
 */
export class DirectorySource implements DatasetSource {
  readonly verifyAll = true
  readonly stats = {files: 0, bytes: 0}

  /** `ignored`: the dotfiles and dot-folders skipped (e.g. .DS_Store), for messages. */
  private constructor(readonly root: string, readonly label: string, readonly files: Map<string, number>, readonly ignored: string[] = []) {}

  static async open(dir: string): Promise<DirectorySource> {
    const root = path.resolve(dir)
    let st
    try {
      st = await fs.stat(root)
    } catch {
      throw new TilesyncError('BAD_DATASET', `${dir}: no such folder`, {hint: 'give the folder `tilesync export` wrote'})
    }
    if (!st.isDirectory()) throw new TilesyncError('BAD_DATASET', `${dir} is not a folder`)
    const files = new Map<string, number>()
    const ignored: string[] = []
    const walk = async (rel: string, depth: number): Promise<void> => {
      if (depth > 4) throw new TilesyncError('BAD_DATASET', `${dir}: unexpected nested folder ${rel}`, {hint: 'the dataset has only a few levels of folders'})
      const entries = await fs.readdir(path.join(root, rel), {withFileTypes: true})
      for (const e of entries) {
        const child = rel ? `${rel}/${e.name}` : e.name
        // Dotfiles are the system's or another tool's (.DS_Store, ._x.png, .oxen/, .git/):
        // never part of the dataset, never read or followed, only listed.
        if (e.name.startsWith('.')) {
          if (!(!rel && e.name === '.oxen')) ignored.push(child)
          continue
        }
        checkDatasetPath(child, dir)
        const ls = await fs.lstat(path.join(root, child))
        if (ls.isSymbolicLink()) {
          throw new TilesyncError('HOSTILE_PATH', `${dir}: ${child} is a symbolic link; refusing to follow it`, {hint: 'a dataset holds plain files only; nothing was changed'})
        }
        if (ls.isDirectory()) await walk(child, depth + 1)
        else if (ls.isFile()) {
          files.set(child, ls.size)
          if (files.size > LIMITS.csvRows * 3) throw new TilesyncError('BAD_DATASET', `${dir}: too many files`)
        } else throw new TilesyncError('HOSTILE_PATH', `${dir}: ${child} is not a regular file`, {hint: 'a dataset holds plain files only; nothing was changed'})
      }
    }
    await walk('', 0)
    return new DirectorySource(root, dir, files, ignored.sort())
  }

  /** Refuses files outside the layout (given the image folders) and absurd sizes. */
  checkKnownFiles(folders: Set<string>): void {
    for (const [p, size] of this.files) {
      const kind = classifyPath(p, folders)
      if (!kind) throw new TilesyncError('BAD_DATASET', `${this.label}: unknown file ${p}`, {hint: 'a dataset holds only generations.csv, README.md, the image folders and tilesync/; nothing was changed'})
      const max = kind === 'image' || kind === 'blob' ? LIMITS.fileBytes : kind === 'manifest' ? LIMITS.manifestBytes : LIMITS.textBytes
      if (size > max) throw tooLarge(this.label, p, size, max)
    }
  }

  async exists(p: string): Promise<boolean> {
    return this.files.has(p)
  }

  async read(p: string, maxBytes: number): Promise<Buffer> {
    const known = this.files.get(p)
    if (known === undefined) throw missingFile(this.label, p)
    if (known > maxBytes) throw tooLarge(this.label, p, known, maxBytes)
    // O_NOFOLLOW: a file swapped for a link after the walk is still refused.
    let handle
    try {
      handle = await fs.open(path.join(this.root, p), fsc.O_RDONLY | fsc.O_NOFOLLOW)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ELOOP') throw new TilesyncError('HOSTILE_PATH', `${this.label}: ${p} is a symbolic link; refusing to follow it`)
      if (code === 'ENOENT') throw missingFile(this.label, p)
      throw err
    }
    try {
      const st = await handle.stat()
      if (!st.isFile()) throw new TilesyncError('HOSTILE_PATH', `${this.label}: ${p} is not a regular file`)
      if (st.size > maxBytes) throw tooLarge(this.label, p, st.size, maxBytes)
      const bytes = await handle.readFile()
      this.stats.files++
      this.stats.bytes += bytes.length
      return bytes
    } finally {
      await handle.close()
    }
  }
}
