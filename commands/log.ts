import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {describeSchemaChange, short} from '../src/cli/format.js'
import {log, type LogEntry} from '../src/ops/log.js'

/** The --stat lines of one commit: layers, layer changes by name, schema changes. */
function statLines(c: LogEntry, indent: string): string[] {
  if (!c.stat) return []
  const lines: string[] = []
  const layers = Object.entries(c.stat.layers).map(([layer, n]) => `${layer} ${[n.added && `${n.added} added`, n.removed && `${n.removed} removed`, n.modified && `${n.modified} modified`].filter(Boolean).join(', ')}`)
  if (layers.length) lines.push(`${indent}Layers: ${layers.join('; ')}`)
  for (const e of c.stat.events) lines.push(`${indent}  ${e}`)
  if (c.stat.moreEvents) lines.push(`${indent}  … ${c.stat.moreEvents} more (--json lists the counts)`)
  for (const s of c.stat.schema) lines.push(`${indent}schema: ${describeSchemaChange(s, {tileTable: c.stat.tileTable, layers: c.stat.layerNames})}`)
  return lines
}

export default class Log extends TilesyncCommand {
  static override summary = 'Show commit history: id, author, date, message and tiles changed.'
  static override description = 'With --stat, each commit also shows what it did per image layer against its first parent: how many tiles gained, lost or changed an image in each layer ("dark_mode: 1 removed"), the first changes by name ("dark_mode removed from tile 3,4"), and its schema changes ("schema: column dark_mode added").'
  static override examples = ['<%= config.bin %> log', '<%= config.bin %> log -n 5 --oneline', '<%= config.bin %> log --stat -n 3', '<%= config.bin %> log origin/main --json']
  static override args = {revision: Args.string({description: 'where to start (default HEAD)'})}
  static override flags = {
    'max-count': Flags.integer({char: 'n', description: 'show at most N commits', min: 1}),
    oneline: Flags.boolean({description: 'one line per commit'}),
    stat: Flags.boolean({description: 'per commit: images added, removed and modified per layer, and schema changes'}),
  }

  async run(): Promise<{commits: LogEntry[]}> {
    const {args, flags} = await this.parse(Log)
    const commits = await log(await this.workspace(), {revision: args.revision, limit: flags['max-count'], stat: flags.stat})
    if (commits.length === 0) this.say('No commits yet.')
    for (const c of commits) {
      const refs = c.refs.length ? ` (${c.refs.join(', ')})` : ''
      if (flags.oneline) {
        this.say(`${short(c.id)}${refs} ${c.message.split('\n')[0]} [${c.tilesChanged} tiles]`)
        for (const line of statLines(c, '    ')) this.say(line)
        continue
      }
      this.say(`commit ${c.id}${refs}`)
      if (c.parents.length > 1) this.say(`Merge:  ${c.parents.map((p) => short(p)).join(' ')}`)
      this.say(`Author: ${c.author} <${c.email}>`)
      this.say(`Date:   ${c.date}`)
      this.say(`Tiles:  ${c.tilesChanged} changed (${c.stats.tilesAdded} added, ${c.stats.tilesModified} modified, ${c.stats.tilesDeleted} deleted)`)
      for (const line of statLines(c, '')) this.say(line)
      this.say('')
      for (const line of c.message.split('\n')) this.say(`    ${line}`)
      this.say('')
    }
    return {commits}
  }
}
