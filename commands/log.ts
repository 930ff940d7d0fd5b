import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import {log, type LogEntry} from '../src/ops/log.js'

export default class Log extends TilesyncCommand {
  static override summary = 'Show commit history: id, author, date, message and tiles changed.'
  static override examples = ['<%= config.bin %> log', '<%= config.bin %> log -n 5 --oneline', '<%= config.bin %> log origin/main --json']
  static override args = {revision: Args.string({description: 'where to start (default HEAD)'})}
  static override flags = {
    'max-count': Flags.integer({char: 'n', description: 'show at most N commits', min: 1}),
    oneline: Flags.boolean({description: 'one line per commit'}),
  }

  async run(): Promise<{commits: LogEntry[]}> {
    const {args, flags} = await this.parse(Log)
    const commits = await log(await this.workspace(), {revision: args.revision, limit: flags['max-count']})
    if (commits.length === 0) this.say('No commits yet.')
    for (const c of commits) {
      const refs = c.refs.length ? ` (${c.refs.join(', ')})` : ''
      if (flags.oneline) {
        this.say(`${short(c.id)}${refs} ${c.message.split('\n')[0]} [${c.tilesChanged} tiles]`)
        continue
      }
      this.say(`commit ${c.id}${refs}`)
      if (c.parents.length > 1) this.say(`Merge:  ${c.parents.map((p) => short(p)).join(' ')}`)
      this.say(`Author: ${c.author} <${c.email}>`)
      this.say(`Date:   ${c.date}`)
      this.say(`Tiles:  ${c.tilesChanged} changed (${c.stats.tilesAdded} added, ${c.stats.tilesModified} modified, ${c.stats.tilesDeleted} deleted)`)
      this.say('')
      for (const line of c.message.split('\n')) this.say(`    ${line}`)
      this.say('')
    }
    return {commits}
  }
}
