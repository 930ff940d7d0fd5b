import * as fs from 'node:fs/promises'

import {TilesyncError} from '../core/errors.js'
import type {RemoteInventory} from '../remote/capabilities.js'
import type {TransportTuning} from '../remote/registry.js'
import type {Transport} from '../remote/transport.js'
import type {Workspace} from '../workspace/workspace.js'
import {openRemote, remoteConfig} from './remotes.js'
import {appendSyncLog} from './sync-log.js'

export interface DestroyResult extends RemoteInventory {
  remote: string
  url: string
  /** Remote-tracking refs removed here (refs/remotes/NAME/*). */
  trackingRefs: number
}

export interface DestroyRequest {
  /** The remote's name typed by the user (the prompt's answer or --confirm): must equal the name exactly. */
  confirm?: string
  dryRun?: boolean
  /** The branches the user was shown (a dry run's `branches`): refused if the remote moved since. */
  expected?: Array<{name: string; version: string}>
  transport?: TransportTuning
}

/**
 * `tilesync remote destroy NAME`: removes everything tilesync stored on a remote (objects,
 * refs, metadata; a hosted repository as a whole), then this repository's remote-tracking refs
 * and push state for it. Refused unless `confirm` is the remote's name exactly; with
 * `dryRun`, only shows what would go. The remote stays configured: a later push recreates it.
 */
export async function destroyRemote(ws: Workspace, name: string, request: DestroyRequest): Promise<DestroyResult> {
  const config = remoteConfig(ws.repo, name)
  const dryRun = Boolean(request.dryRun)
  if (!dryRun) assertConfirmed(name, request.confirm)
  const remote = await openRemote(ws.repo, name, request.transport)
  const start = Date.now()
  try {
    const inventory = await destroyThrough(remote, name, {dryRun, expected: request.expected})
    const tracking = await ws.repo.refs.list(`refs/remotes/${name}`)
    if (!dryRun) {
      for (const r of tracking) await ws.repo.refs.update(r.name, null, `remote destroy: ${name} deleted`)
      // What earlier pushes sent (a resumable push's journal, a map of the remote's commits) is no longer there.
      await fs.rm(ws.repo.layout.remoteState(name), {recursive: true, force: true})
      await appendSyncLog(ws.repo, {time: new Date(start).toISOString(), op: 'destroy', remote: name, objects: inventory.objects ?? undefined, bytes: inventory.bytes ?? undefined, durationMs: Date.now() - start, result: 'ok'})
    }
    return {...inventory, remote: name, url: config.url, trackingRefs: tracking.length}
  } finally {
    await remote.close()
  }
}

export function assertConfirmed(name: string, confirm: string | undefined): void {
  if (confirm === undefined) {
    throw new TilesyncError('BAD_ARGUMENT', `destroying remote "${name}" needs confirmation; nothing was removed`, {
      hint: `type the remote's name when asked, or pass \`--confirm ${name}\` (see first what would go with --dry-run)`,
    })
  }
  if (confirm !== name) {
    throw new TilesyncError('BAD_ARGUMENT', `confirmation "${confirm.slice(0, 80)}" is not the remote's name "${name}"; nothing was removed`, {
      hint: `type exactly ${name}`,
    })
  }
}

async function destroyThrough(remote: Transport, name: string, options: {dryRun: boolean; expected?: Array<{name: string; version: string}>}): Promise<RemoteInventory> {
  if (!remote.destroy) {
    throw new TilesyncError('REMOTE_UNSUPPORTED', `remote "${name}" (${remote.kind}) cannot be destroyed by tilesync`, {hint: 'delete it with the storage service\'s own tools'})
  }
  return remote.destroy(options)
}
