import {Args} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatIgnored, type IgnoreResult, unignore} from '../src/ops/ignore.js'

export default class Unignore extends TilesyncCommand {
  static override summary = 'Version tables or columns again that `tilesync ignore` left out.'
  static override description = 'The next commit records them; until then `tilesync status` lists their rows as new. Commits made while they were ignored hold no rows of them, and a checkout of such a commit leaves them as they are.'
  static override examples = ['<%= config.bin %> unignore generation_queue', '<%= config.bin %> unignore quadrants.flagged']
  static override strict = false
  static override args = {entries: Args.string({required: true, description: 'TABLE or TABLE.COLUMN (several allowed)'})}

  async run(): Promise<IgnoreResult> {
    const {argv} = await this.parse(Unignore)
    const result = await unignore(await this.workspace(), argv as string[])
    this.say(`Versioned again: ${result.changed.join(', ')}`)
    for (const n of result.notes) this.say(`note: ${n}`)
    for (const line of formatIgnored(result)) this.say(line)
    if (result.entries.length === 0) this.say('Nothing else is ignored.')
    return result
  }
}
