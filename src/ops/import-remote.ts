import {existsSync} from 'node:fs'

import {TilesyncError} from '../core/errors.js'
import {importByXY, type XYImportResult} from '../dataset/import-by-xy.js'
import type {RemoteConfig} from '../repo/config.js'
import {openTransport, type TransportTuning} from '../remote/registry.js'
import {createProgress, type Progress} from '../util/progress.js'
import type {Workspace} from '../workspace/workspace.js'

export interface RemoteImportOptions {
  /** A URL with an optional `@BRANCH` (SCHEME://NAMESPACE/REPO@night) or a configured remote's name (`hub`, `hub@night`). */
  source: string
  force?: boolean
  dryRun?: boolean
  /** For a URL: the remote's settings (e.g. its host). */
  remote?: Omit<RemoteConfig, 'url'>
  transport?: TransportTuning
  progress?: Progress
}

export interface RemoteImportResult extends XYImportResult {
  remote: string
  branch: string
  /** The remote's version of the branch head that was read (a hub commit id). */
  revision: string
}

/** Whether `source` names a remote (a URL with a scheme, or a configured remote) rather than a folder. */
export function isRemoteSource(ws: Workspace, source: string): boolean {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) return true
  // A folder of that name is the folder (`./hub` to be sure).
  if (existsSync(source)) return false
  const name = source.split('@')[0]
  return Boolean(ws.repo.config.remotes[name])
}

/**
 * `tilesync import URL[@BRANCH]` / `import REMOTE[@BRANCH]`: a dataset on a remote that
 * publishes files (the `openDataset` capability), imported by tile coordinates into the working database (see
 * src/dataset/import-by-xy.ts). The remote's history is not fetched: this is for datasets
 * written with other tools, or pushed from a repository this one shares no history with.
 */
export async function importRemote(ws: Workspace, options: RemoteImportOptions): Promise<RemoteImportResult> {
  if (ws.repo.partial) {
    // Comparing by MD5 reads every local image, and a partial clone fetches each one it lacks.
    throw new TilesyncError('REMOTE_UNSUPPORTED', 'an import from a remote compares every tile of the map: it is not for a partial clone (clone --bbox)', {hint: 'run it in a full clone'})
  }
  const {config, name, branch} = resolveSource(ws, options)
  const remote = await openTransport(config, {name, cwd: ws.repo.root, tuning: options.transport})
  try {
    if (!remote.openDataset) {
      throw new TilesyncError('REMOTE_UNSUPPORTED', `${remote.location} holds tilesync objects, not a browsable dataset`, {hint: 'use `tilesync pull` or `clone` for it'})
    }
    const {source, branch: read, revision} = await remote.openDataset(branch)
    const progress = options.progress ?? (options.dryRun ? undefined : await createProgress('files'))
    const result = await importByXY(ws, source, {force: options.force, dryRun: options.dryRun, progress})
    return {...result, remote: remote.location, branch: read, revision}
  } finally {
    await remote.close()
  }
}

function resolveSource(ws: Workspace, options: RemoteImportOptions): {config: RemoteConfig; name: string; branch?: string} {
  // URL@BRANCH, hub@BRANCH: the branch (which may hold "/") follows the first "@".
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(options.source)?.[0].length ?? 0
  const at = options.source.indexOf('@', scheme)
  const [base, branch] = at >= 0 ? [options.source.slice(0, at), options.source.slice(at + 1)] : [options.source, undefined]
  if (branch === '') throw new TilesyncError('BAD_ARGUMENT', `"${options.source}" ends with "@" but names no branch`, {hint: 'write URL@BRANCH, or leave out "@"'})
  const extra = Object.fromEntries(Object.entries(options.remote ?? {}).filter(([, v]) => v !== undefined))
  if (scheme > 0) return {config: {url: base, ...extra}, name: 'import', branch}
  const configured = ws.repo.config.remotes[base]
  if (!configured) throw new TilesyncError('REMOTE_UNKNOWN', `no remote named "${base}"`, {hint: 'give a remote URL, a configured remote, or a dataset folder'})
  return {config: {...configured, ...extra}, name: base, branch}
}
