import {Args} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatIgnored, ignore, type IgnoreResult, listIgnored, type IgnoredReport} from '../src/ops/ignore.js'

export default class Ignore extends TilesyncCommand {
  static override summary = 'Leave tables or columns out of versioning (a live work queue, a log, a per-user flag); without arguments, list what is left out.'
  static override description = `An ignored table or column is never read by status, commit or diff, and never written by checkout, merge, pull, import or clone, so a checkout cannot roll back the queue under the running app. Its CREATE statement stays in each commit, so a clone creates an ignored table empty (and an ignored column with its default), and the app starts. tilesync's change-tracking triggers are removed from an ignored table at once. Recorded in .tilesync/config.json ("ignore"); \`tilesync unignore\` versions it again. The tile table itself cannot be ignored, nor a column that identifies rows (a key column).`

  static override examples = [
    '<%= config.bin %> ignore generation_queue',
    '<%= config.bin %> ignore quadrants.flagged quadrants.starred',
    '<%= config.bin %> ignore',
    '<%= config.bin %> ignore --json',
  ]

  static override strict = false
  static override args = {entries: Args.string({description: 'TABLE or TABLE.COLUMN (several allowed)'})}

  async run(): Promise<IgnoreResult | IgnoredReport> {
    const {argv} = await this.parse(Ignore)
    const ws = await this.workspace()
    const entries = argv as string[]
    if (entries.length === 0) {
      const report = await listIgnored(ws)
      if (report.entries.length === 0) this.say('Nothing is ignored: every table and column is versioned.')
      for (const line of formatIgnored(report)) this.say(line)
      return report
    }
    const result = await ignore(ws, entries)
    if (result.changed.length) this.say(`Left out of versioning: ${result.changed.join(', ')}`)
    for (const n of result.notes) this.say(`note: ${n}`)
    for (const line of formatIgnored(result)) this.say(line)
    return result
  }
}
