import * as fs from 'node:fs/promises'

import {TilesyncError} from '../core/errors.js'
import {isObjectId} from '../core/hash.js'
import type {RemoteConfig} from '../repo/config.js'
import {assertValidRefName} from '../repo/refs.js'

/** File name of a release manifest, committed to the git repository around the data. */
export const MANIFEST_FILE = 'tilesync.release.json'
export const MANIFEST_FORMAT = 'tilesync-release'

/**
 * What a reviewed release pins: one tilesync commit of one dataset, where it was staged, and
 * what it holds (so a reviewer sees the size of the change, and a consumer can check it).
 */
export interface ReleaseManifest {
  format: typeof MANIFEST_FORMAT
  version: 1
  /** Dataset name (default: the name of the directory holding `.tilesync/`). */
  name: string
  /** The staging remote the commit was pushed to: its name where it was prepared, and how to reach it (never credentials). */
  remote: {name: string} & RemoteConfig
  /** Branch moved on production by `release publish`. */
  branch: string
  /** The tilesync commit id (64 hex digits). */
  commit: string
  /** The commit's message, for reviewers. */
  message: string
  /** Rows of the tile table at the commit. */
  tiles: number
  /** Rows of all tables at the commit. */
  rows: number
  /** Distinct blob objects (tile images and other BLOB cells) the commit refers to, and their total size. */
  blobs: number
  bytes: number
  /** The database path inside the tilesync repository. */
  database: string
  createdAt: string
  /**
   * Set by `release rollback`: production goes back to `commit` from the release it served
   * when the rollback was prepared (`from`, a commit id). Publish moves production's branch
   * back only from there, so an old release is never put live by accident.
   */
  rollback?: {from: string}
}

function bad(source: string, problem: string): TilesyncError {
  return new TilesyncError('BAD_ARGUMENT', `${source} is not a valid release manifest: ${problem}`, {
    hint: `it is written by \`tilesync release prepare\`; restore it from that commit`,
  })
}

/** Checks every field of a parsed manifest; a hand-edited or foreign file is refused with what is wrong. */
export function validateManifest(value: unknown, source: string): ReleaseManifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(source, 'not a JSON object')
  const m = value as Record<string, unknown>
  if (m.format !== MANIFEST_FORMAT) throw bad(source, `"format" must be "${MANIFEST_FORMAT}"`)
  if (m.version !== 1) throw bad(source, `unsupported version ${JSON.stringify(m.version)} (this tilesync reads version 1)`)
  const str = (k: string): string => {
    if (typeof m[k] !== 'string' || (m[k] as string).length === 0) throw bad(source, `"${k}" must be a non-empty string`)
    return m[k] as string
  }
  const count = (k: string): number => {
    if (!Number.isSafeInteger(m[k]) || (m[k] as number) < 0) throw bad(source, `"${k}" must be a whole number >= 0`)
    return m[k] as number
  }
  const commit = str('commit')
  if (!isObjectId(commit)) throw bad(source, `"commit" must be a full 64-digit commit id, got "${commit}"`)
  const branch = str('branch')
  try {
    assertValidRefName(branch, 'branch')
  } catch {
    throw bad(source, `"branch" is not a valid branch name: "${branch}"`)
  }
  const r = m.remote as Record<string, unknown> | undefined
  if (typeof r !== 'object' || r === null || typeof r.name !== 'string' || !r.name || typeof r.url !== 'string' || !r.url) {
    throw bad(source, '"remote" must be an object with "name" and "url"')
  }
  for (const k of ['endpoint', 'region', 'host']) {
    if (r[k] !== undefined && typeof r[k] !== 'string') throw bad(source, `"remote.${k}" must be a string`)
  }
  const remote: ReleaseManifest['remote'] = {name: r.name, url: r.url}
  for (const k of ['endpoint', 'region', 'host'] as const) if (typeof r[k] === 'string') remote[k] = r[k] as string
  const createdAt = str('createdAt')
  if (Number.isNaN(Date.parse(createdAt))) throw bad(source, `"createdAt" is not a date: "${createdAt}"`)
  let rollback: ReleaseManifest['rollback']
  if (m.rollback !== undefined) {
    const from = (m.rollback as {from?: unknown} | null)?.from
    if (typeof from !== 'string' || !isObjectId(from)) throw bad(source, '"rollback" must be {"from": <64-digit commit id>}')
    rollback = {from}
  }
  return {
    format: MANIFEST_FORMAT, version: 1, name: str('name'), remote, branch, commit,
    message: typeof m.message === 'string' ? m.message : '',
    tiles: count('tiles'), rows: count('rows'), blobs: count('blobs'), bytes: count('bytes'),
    database: str('database'), createdAt, ...(rollback ? {rollback} : {}),
  }
}

export function parseManifest(text: string, source: string): ReleaseManifest {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw bad(source, `not JSON (${(error as Error).message})`)
  }
  return validateManifest(value, source)
}

/** The file's bytes: stable key order, two-space indent, final newline, so diffs in review are small. */
export function serializeManifest(m: ReleaseManifest): string {
  const ordered: ReleaseManifest = {
    format: m.format, version: m.version, name: m.name, remote: m.remote, branch: m.branch, commit: m.commit,
    message: m.message, tiles: m.tiles, rows: m.rows, blobs: m.blobs, bytes: m.bytes, database: m.database, createdAt: m.createdAt,
    ...(m.rollback ? {rollback: {from: m.rollback.from}} : {}),
  }
  return JSON.stringify(ordered, null, 2) + '\n'
}

export async function readManifestFile(file: string): Promise<ReleaseManifest> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (error) {
    throw new TilesyncError('BAD_ARGUMENT', `cannot read release manifest ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      hint: `give the path of a ${MANIFEST_FILE} written by \`tilesync release prepare\``,
    })
  }
  return parseManifest(text, file)
}

/** The remote settings of a manifest, as a RemoteConfig (without its name). */
export function manifestRemoteConfig(m: ReleaseManifest): RemoteConfig {
  const {name: _name, ...config} = m.remote
  return config
}
