import {Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {describeSchemaChange, formatBytes, short} from '../src/cli/format.js'
import {commit, type CommitResult} from '../src/ops/commit.js'
import {parseAuthor} from '../src/util/author.js'

export default class Commit extends TilesyncCommand {
  static override summary = 'Snapshot the database as a new commit.'
  static override description = 'Records every table of the database. Nothing is committed when nothing changed. Normally reads only the rows the database recorded as changed (see `tilesync tracking`), and every row when the file was written outside that record (e.g. incremental blob I/O); --rescan always reads every row. The author defaults to TILESYNC_AUTHOR_NAME/EMAIL, GIT_AUTHOR_NAME/EMAIL or git config.'
  static override examples = [
    '<%= config.bin %> commit -m "night run: 40 new tiles"',
    '<%= config.bin %> commit -m "fix seams" --author "Ada <ada@example.com>"',
    '<%= config.bin %> commit -m "after the blob-writing script" --rescan',
  ]

  static override flags = {
    message: Flags.string({char: 'm', required: true, description: 'commit message'}),
    author: Flags.string({description: 'author as "Name <email>"'}),
    rescan: Flags.boolean({description: 'read every row instead of the change record'}),
  }

  async run(): Promise<CommitResult> {
    const {flags} = await this.parse(Commit)
    const result = await commit(await this.workspace(), {message: flags.message, author: flags.author ? parseAuthor(flags.author) : undefined, rescan: flags.rescan})
    if (!result.scan.incremental && /outside the change record/.test(result.scan.reason)) this.say(`Read every row: ${result.scan.reason}.`)
    for (const note of result.scan.notes) this.say(`Note: ${note}.`)
    if (!result.committed) {
      this.say(`Nothing to commit: the database matches ${short(result.id)}.`)
      return result
    }
    const s = result.summary
    this.say(`[${result.branch ?? 'detached'} ${short(result.id)}] ${result.message.split('\n')[0]}`)
    this.say(` ${s.tilesAdded} tiles added, ${s.tilesModified} modified, ${s.tilesDeleted} deleted; ${s.rowsChanged} rows changed (${formatBytes(result.bytesRead)} read)`)
    for (const c of result.schema) this.say(` schema: ${describeSchemaChange(c, result)}`)
    return result
  }
}
