import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {isTilesyncError} from '../core/errors.js'
import {isObjectId} from '../core/hash.js'
import {readTrackingState} from '../db/change-tracking.js'
import {openDatabase} from '../db/open-database.js'
import type {ReflogEntry} from '../repo/refs.js'
import type {Repository} from '../repo/repository.js'

/** A ref and the commit it names (null when its file is damaged: `error` says how). */
export interface RefRoot {
  name: string
  id: string | null
  error?: string
}

/**
 * Everything that keeps objects alive in a repository, for fsck and gc: refs (HEAD, local
 * branches, tags, remote-tracking branches, refs/saved), every id any reflog ever recorded,
 * the merge in progress, ids kept by remote state (push journals, transports' sync state) and the
 * baseline snapshot of the database's change record.
 */
export interface RepoRoots {
  refs: RefRoot[]
  /** Reflog ids per reflog name (old and new values of every entry). */
  reflogs: Array<{ref: string; entry: ReflogEntry}>
  /** Commits named by MERGE_STATE.json. */
  merge: Array<{name: string; id: string}>
  /** Ids found in `.tilesync/remotes/*` (push journals, transports' state): objects of any kind. */
  remoteState: string[]
  /** The snapshot the database's change record is relative to, when there is one. */
  baseline: string | null
}

export async function collectRoots(repo: Repository, options: {baseline?: boolean} = {}): Promise<RepoRoots> {
  const refs: RefRoot[] = []
  try {
    const head = await repo.refs.readHead()
    if (head.kind === 'detached') refs.push({name: 'HEAD', id: head.id})
  } catch (error) {
    refs.push({name: 'HEAD', id: null, error: (error as Error).message})
  }
  for (const file of await listFiles(repo.layout.dir, ['refs'])) {
    const name = file.join('/')
    if (name.endsWith('.lock')) continue
    try {
      const id = await repo.refs.read(name)
      if (id) refs.push({name, id})
    } catch (error) {
      refs.push({name, id: null, error: (error as Error).message})
    }
  }
  const reflogs: RepoRoots['reflogs'] = []
  for (const file of await listFiles(repo.layout.logs, [])) {
    const ref = file.join('/')
    for (const entry of await repo.refs.readReflog(ref)) reflogs.push({ref, entry})
  }
  const merge: RepoRoots['merge'] = []
  const mergeText = await fs.readFile(repo.layout.mergeState, 'utf8').catch(() => null)
  if (mergeText !== null) {
    try {
      const state = JSON.parse(mergeText) as Record<string, unknown>
      for (const k of ['ours', 'theirs', 'base']) if (typeof state[k] === 'string' && isObjectId(state[k] as string)) merge.push({name: `merge ${k}`, id: state[k] as string})
    } catch {
      // A damaged merge state: keep every id it mentions.
      for (const id of hexIds(mergeText)) merge.push({name: 'merge state', id})
    }
  }
  const remoteState = new Set<string>()
  const remotesDir = path.join(repo.layout.dir, 'remotes')
  for (const file of await listFiles(remotesDir, [])) {
    const full = path.join(remotesDir, ...file)
    const st = await fs.stat(full).catch(() => null)
    if (!st || st.size > 256 * 1024 * 1024) continue
    for (const id of hexIds(await fs.readFile(full, 'utf8').catch(() => ''))) remoteState.add(id)
  }
  return {refs, reflogs, merge, remoteState: [...remoteState], baseline: options.baseline === false ? null : readBaseline(repo)}
}

/** Every 64-hex-digit word of a text: journals and sync state name objects this way. */
function hexIds(text: string): string[] {
  return text.match(/(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])/g) ?? []
}

/** Files under `dir` (relative path segments), recursively; nothing when it does not exist. */
async function listFiles(dir: string, sub: string[]): Promise<string[][]> {
  const out: string[][] = []
  let entries
  try {
    entries = await fs.readdir(path.join(dir, ...sub), {withFileTypes: true})
  } catch {
    return out
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory()) out.push(...await listFiles(dir, [...sub, e.name]))
    else if (e.isFile()) out.push([...sub, e.name])
  }
  return out
}

/**
 * The database's change-tracking baseline: incremental scans read that snapshot's trees, so
 * gc must keep it. A missing database has none; one that cannot be read is an error, since
 * gc cannot then know what it needs.
 */
function readBaseline(repo: Repository): string | null {
  let db
  try {
    db = openDatabase(repo.databasePath, {readonly: true})
  } catch (error) {
    if (isTilesyncError(error, 'DB_MISSING')) return null
    throw error
  }
  try {
    const state = readTrackingState(db)
    return state.baseline && isObjectId(state.baseline) ? state.baseline : null
  } finally {
    db.close()
  }
}
