import {Args} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import {setTracking, trackingInfo, type TrackingInfo} from '../src/ops/tracking.js'

export default class Tracking extends TilesyncCommand {
  static override summary = 'Show, enable or remove change tracking in the database (what makes status and commit fast).'
  static override description = `tilesync adds to the database a table _tilesync_changes, a table _tilesync_state and three triggers per versioned table (_tilesync_<table>_ins/_upd/_del). They record the key of every row any process inserts, updates or deletes, so status and commit read only those rows. \`tracking off\` removes all of them; status and commit then read every row. \`tracking on\` puts them back (commit also installs them unless tracking is off).`

  static override examples = ['<%= config.bin %> tracking', '<%= config.bin %> tracking off', '<%= config.bin %> tracking on']
  static override args = {action: Args.string({options: ['status', 'on', 'off'], default: 'status', description: 'status (default), on or off'})}

  async run(): Promise<TrackingInfo> {
    const {args} = await this.parse(Tracking)
    const ws = await this.workspace()
    const info = args.action === 'status' ? await trackingInfo(ws) : await setTracking(ws, args.action === 'on')
    this.say(`change tracking: ${info.enabled ? 'enabled' : 'off'}; ${info.installed ? (info.intact ? 'installed' : 'installed but not intact (next commit repairs it)') : 'not installed'}`)
    if (info.installed) this.say(`baseline ${short(info.baseline)}, ${info.pendingChanges} recorded change(s)`)
    return info
  }
}
