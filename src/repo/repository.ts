import {existsSync} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import {LocalObjectStore} from '../store/local-object-store.js'
import {loadConfig, type RepoConfig, writeNewConfig} from './config.js'
import {RepoLayout, STORE_DIR_NAME} from './layout.js'
import {Refs} from './refs.js'
import {acquireRepoLock} from './repo-lock.js'
import {loadPartial, type PartialFilter} from './partial.js'
import {loadShallow} from './shallow.js'

export const DEFAULT_BRANCH = 'main'

/** An opened `.tilesync/` store: layout, config, object store and refs together. */
export class Repository {
  readonly store: LocalObjectStore
  readonly refs: Refs

  private constructor(
    readonly layout: RepoLayout,
    readonly config: RepoConfig,
    private readonly saveConfig: () => Promise<void>,
  ) {
    this.store = new LocalObjectStore(layout.objects, layout.tmp, {durable: process.env.TILESYNC_FSYNC !== '0'})
    this.refs = new Refs(layout, () => this.store.flush())
  }

  get root(): string { return this.layout.root }

  /** Commits whose parents were cut off by a prune of the remote they came from. */
  get shallow(): Set<string> {
    return loadShallow(this.layout.shallow)
  }

  /** The filter of a partial clone (`clone --bbox`); null for a full repository. */
  get partial(): PartialFilter | null {
    if (this.partialFilter === undefined) this.partialFilter = loadPartial(this.layout.dir)
    return this.partialFilter
  }

  private partialFilter?: PartialFilter | null

  /** Absolute path of the versioned database. */
  get databasePath(): string {
    return path.resolve(this.root, this.config.database)
  }

  async writeConfig(): Promise<void> {
    await this.saveConfig()
  }

  withLock<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return acquireRepoLock(this.layout.lock, this.layout.tmp, what).then(async (release) => {
      try {
        return await fn()
      } finally {
        await release()
      }
    })
  }

  /** Finds the repository containing `start`, walking up as git does. */
  static async find(start: string = process.cwd()): Promise<Repository> {
    let dir = path.resolve(start)
    for (;;) {
      if (existsSync(path.join(dir, STORE_DIR_NAME, 'HEAD'))) return Repository.open(dir)
      const parent = path.dirname(dir)
      if (parent === dir) {
        throw new TilesyncError('NOT_A_REPO', `not a tilesync repository (or any parent up to /): ${start}`, {
          hint: 'run `tilesync init` first, or `tilesync clone URL`',
        })
      }
      dir = parent
    }
  }

  static async open(root: string): Promise<Repository> {
    const layout = new RepoLayout(root)
    const {data, save} = await loadConfig(layout.config)
    return new Repository(layout, data, save)
  }

  static async create(root: string, config: RepoConfig): Promise<Repository> {
    const layout = new RepoLayout(root)
    if (existsSync(path.join(layout.dir, 'HEAD'))) {
      throw new TilesyncError('ALREADY_A_REPO', `${layout.dir} already exists`, {hint: 'this directory is already a tilesync repository'})
    }
    for (const d of [layout.dir, layout.objects, layout.tmp, layout.logs, layout.ref('refs/heads'), layout.ref('refs/tags')]) {
      await fs.mkdir(d, {recursive: true})
    }
    await writeNewConfig(layout.config, config)
    await fs.writeFile(layout.head, `ref: refs/heads/${DEFAULT_BRANCH}\n`)
    return Repository.open(root)
  }
}
