import {Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatChangeSet, formatShapeReport, short} from '../src/cli/format.js'
import {formatIgnored} from '../src/ops/ignore.js'
import {status, type StatusResult} from '../src/ops/status.js'

export default class Status extends TilesyncCommand {
  static override summary = 'Show what differs between the database and HEAD, per tile and layer.'
  static override description = 'Normally reads only the rows the database recorded as changed (see `tilesync tracking`); --rescan reads every row. Says so when the file was written outside that record (e.g. incremental blob I/O), and lists what is not versioned; --verbose also lists every versioned table and how its changes are found. A NULL image is reported as that layer removed from the tile (the tile stays); a column the app added is reported as "schema: column NAME added" with only the tiles that hold a value in it. Tables and columns left out with `tilesync ignore` are listed last and never read.'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json', '<%= config.bin %> status --rescan', '<%= config.bin %> status --verbose']
  static override flags = {
    rescan: Flags.boolean({description: 'read every row instead of the change record'}),
    verbose: Flags.boolean({char: 'v', description: 'also list every versioned table and how its changes are found'}),
  }

  async run(): Promise<StatusResult> {
    const {flags} = await this.parse(Status)
    const ws = await this.workspace()
    const result = await status(ws, {rescan: flags.rescan})
    this.say(result.branch ? `On branch ${result.branch} (${short(result.head)})` : `HEAD detached at ${short(result.head)}`)
    const partial = ws.repo.partial
    if (partial) this.say(`Partial clone of tiles ${partial.bbox.join(',')}: the database holds those tiles; the others are HEAD's, their images on ${partial.remote}.`)
    if (result.inProgress === 'revert') this.say('A revert is in progress: `tilesync revert --status` lists its conflicts; settle them with --ours or --theirs, or `tilesync revert --abort`.')
    else if (result.merging) this.say('A merge is in progress: see `tilesync merge --help`.')
    if (!result.head) this.say('No commits yet.')
    if (result.clean) this.say('Nothing to commit: the database matches HEAD.')
    for (const note of result.scan.notes) this.say(`Note: ${note}.`)
    if (result.outsideWrites === 'detected' && result.scan.incremental) {
      this.say('The database file was written outside the change record since the last commit (e.g. incremental blob I/O): this status may miss those changes; `tilesync status --rescan` reads every row (commit does so by itself).')
    }
    else for (const line of formatChangeSet(result.changes, {limit: 200})) this.say(line)
    for (const line of formatShapeReport(result.report, {versioned: Boolean(flags.verbose)})) this.say(line)
    for (const line of formatIgnored(result.ignored)) this.say(line)
    return result
  }
}
