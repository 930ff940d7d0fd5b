import {Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatShapeReport} from '../src/cli/format.js'
import {initRepository, type InitResult} from '../src/ops/init.js'
import {gitIgnoreWarnings, type GitIgnoreWarning} from '../src/util/git-ignored.js'

/** The "ignored" lines of init's report: what was left out, why, and how to change it. */
function formatInitIgnored(result: InitResult): string[] {
  const lines: string[] = []
  if (result.ignored.length) lines.push(`  ignored:   ${result.ignored.join(', ')} (never read, never written by checkout, pull or clone)`)
  for (const p of result.proposed) {
    lines.push(`  ${p.table} looks like a work queue or log (${p.reasons.join(', ')}), so it is left out of versioning;`)
    lines.push(`    to version it: tilesync unignore ${p.table}   (or init with --no-auto-ignore)`)
  }
  for (const n of result.notes) lines.push(`  note: ${n}`)
  return lines
}

const list = (v?: string): string[] | undefined => v?.split(',').map((s) => s.trim()).filter(Boolean)

export default class Init extends TilesyncCommand {
  static override summary = 'Start versioning a tile database: creates .tilesync/ in the current directory.'
  static override description = `Detects the tile table (default "quadrants"), its key columns (the primary key), its image columns (BLOB columns) and every other table, and records them in .tilesync/config.json. Tables that look like a work queue or a log (an AUTOINCREMENT key with status or timestamp columns, such as the pipeline's generation_queue) are left out of versioning, and init says so and how to change it (\`tilesync unignore TABLE\`, or --no-auto-ignore). Prints every table it versions and how their changes are found, and what it leaves out and why. A database it could not give back exactly (a virtual table it cannot read, an application-defined collation, NULL or duplicate keys) is refused with one line before anything is created. Nothing is written to the database. Later commands find .tilesync/ from any subdirectory. Inside a git repository, warns when git does not ignore .tilesync/ or an existing .env (checked with \`git check-ignore\`).`

  static override examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --generations-dir v02',
    '<%= config.bin %> init --db tiles.db --table tiles --key x,y --images render,generation',
    '<%= config.bin %> init --ignore generation_queue,quadrants.flagged',
    '<%= config.bin %> init --no-auto-ignore',
  ]

  static override flags = {
    db: Flags.string({description: 'database path (default generations/v01/quadrants.db)'}),
    'generations-dir': Flags.string({description: 'shorthand for --db generations/NAME/quadrants.db'}),
    table: Flags.string({description: 'tile table name (default: quadrants, or the only table with BLOB columns)'}),
    key: Flags.string({description: 'comma-separated key columns of the tile table (default: its primary key)'}),
    images: Flags.string({description: 'comma-separated image (layer) columns (default: its BLOB columns)'}),
    xy: Flags.string({description: 'the x,y coordinate columns when the key is not x,y'}),
    ignore: Flags.string({description: 'comma-separated tables and TABLE.COLUMNs to leave out of versioning (e.g. generation_queue,quadrants.flagged)'}),
    'auto-ignore': Flags.boolean({default: true, allowNo: true, description: 'leave out tables that look like work queues or logs (AUTOINCREMENT key, status and timestamp columns); --no-auto-ignore versions them'}),
  }

  async run(): Promise<InitResult & {warnings: GitIgnoreWarning[]}> {
    const {flags} = await this.parse(Init)
    const xy = list(flags.xy)
    const result = await initRepository({
      db: flags.db, generationsDir: flags['generations-dir'], table: flags.table,
      key: list(flags.key), images: list(flags.images), xy: xy ? [xy[0], xy[1]] : undefined,
      ignore: list(flags.ignore), autoIgnore: flags['auto-ignore'],
    })
    this.say(`Initialised tilesync in ${result.root}/.tilesync`)
    this.say(`  database:  ${result.database}`)
    this.say(`  tiles:     table ${result.tileTable}, key ${result.keyColumns.join(', ')}, layers ${result.imageColumns.join(', ') || '(none)'}`)
    for (const line of formatShapeReport(result.report)) this.say(line)
    for (const line of formatInitIgnored(result)) this.say(line)
    // In a git repository: the object store and credentials must not be committed with the code.
    const warnings = await gitIgnoreWarnings(result.root)
    for (const w of warnings) this.warnLine(w.message)
    this.say('Next: tilesync commit -m "first snapshot"')
    return {...result, warnings}
  }
}
