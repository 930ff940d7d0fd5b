import {JSONFilePreset} from 'lowdb/node'

import {TilesyncError} from '../core/errors.js'

export interface RemoteConfig {
  url: string
  /** S3-compatible endpoint for s3:// remotes. */
  endpoint?: string
  region?: string
  /** oxen host for oxen:// remotes. */
  host?: string
}

/**
 * `.tilesync/config.json`. Holds where the database is and how its tile table is read.
 * Credentials never go here: they come from the environment at the moment they are used.
 */
export interface RepoConfig {
  version: 1
  /** Database path, relative to the repository root when inside it. */
  database: string
  tileTable: string
  keyColumns?: string[]
  imageColumns?: string[]
  xyColumns?: [string, string]
  remotes: Record<string, RemoteConfig>
  /**
   * Tables (`generation_queue`) and columns (`quadrants.flagged`) left out of versioning:
   * never read for status, commit or diff, never written by checkout, merge, pull, import or
   * clone. Set with `tilesync ignore` / `tilesync unignore` or `init --ignore`.
   */
  ignore?: string[]
  /** Change tracking in the database (see src/db/change-tracking.ts); on unless turned off. */
  tracking?: {enabled: boolean; id?: string}
}

export async function loadConfig(file: string): Promise<{data: RepoConfig; save: () => Promise<void>}> {
  let low
  try {
    low = await JSONFilePreset<RepoConfig>(file, {version: 1, database: '', tileTable: 'quadrants', remotes: {}})
  } catch (error) {
    throw new TilesyncError('BAD_CONFIG', `cannot read ${file}: ${(error as Error).message}`, {
      hint: 'fix or restore the JSON file',
    })
  }
  const data = low.data
  if (data.version !== 1 || typeof data.database !== 'string' || !data.database) {
    throw new TilesyncError('BAD_CONFIG', `${file} is not a tilesync config`, {hint: 'run `tilesync init` again in a new directory'})
  }
  data.remotes ??= {}
  if (data.ignore !== undefined && (!Array.isArray(data.ignore) || !data.ignore.every((e) => typeof e === 'string'))) {
    throw new TilesyncError('BAD_CONFIG', `${file}: "ignore" must be a list of TABLE or TABLE.COLUMN names`, {hint: 'fix it, or manage it with `tilesync ignore` / `tilesync unignore`'})
  }
  return {data, save: () => low.write()}
}

export async function writeNewConfig(file: string, config: RepoConfig): Promise<void> {
  const low = await JSONFilePreset<RepoConfig>(file, config)
  low.data = config
  await low.write()
}
