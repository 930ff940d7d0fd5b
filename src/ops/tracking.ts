import {pendingChangeCount, readTrackingState, triggersIntact, uninstallTracking} from '../db/change-tracking.js'
import type {Workspace} from '../workspace/workspace.js'

export interface TrackingInfo {
  enabled: boolean
  installed: boolean
  intact: boolean
  baseline: string | null
  pendingChanges: number
}

export async function trackingInfo(ws: Workspace): Promise<TrackingInfo> {
  const db = ws.openDb(true)
  try {
    const state = readTrackingState(db)
    return {
      enabled: ws.repo.config.tracking?.enabled !== false,
      installed: state.installed,
      intact: state.installed && state.trackingId === ws.repo.config.tracking?.id && triggersIntact(db, ws.specs(db)),
      baseline: state.baseline,
      pendingChanges: state.installed ? pendingChangeCount(db) : 0,
    }
  } finally {
    db.close()
  }
}

/** `tracking off`: removes the table and triggers from the database and stops reinstalling them. */
export async function setTracking(ws: Workspace, enabled: boolean): Promise<TrackingInfo> {
  await ws.repo.withLock('tracking', async () => {
    ws.repo.config.tracking = {...ws.repo.config.tracking, enabled}
    await ws.repo.writeConfig()
    const db = ws.openDb(false)
    try {
      if (enabled) await ws.ensureTracking(db)
      else uninstallTracking(db)
    } finally {
      db.close()
    }
  })
  return trackingInfo(ws)
}
