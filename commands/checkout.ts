import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import {switchBranch} from '../src/ops/branches.js'
import {checkout, checkoutInto, type CheckoutIntoResult, type CheckoutResult, parseTile} from '../src/ops/checkout.js'
import {parseBBox} from '../src/ops/diff.js'
import {describeUsers} from '../src/db/database-users.js'

export default class Checkout extends TilesyncCommand {
  static override summary = 'Make the database equal to a revision (rollback), or restore some tiles of it.'
  static override description = `Writes only the rows that differ, in one SQLite transaction: all or nothing. The database is read before that transaction, so a pipeline writing it meanwhile waits only while the rows are written; when another process has the database open, checkout (and --dry-run) says so first. Refuses when the database has uncommitted changes unless --force; with --force those changes are first saved as a commit on refs/saved (see \`tilesync reflog saved\`), so they can be got back. With --tile or --bbox only those tiles are restored and HEAD does not move. With --into FILE the revision is written into a new database file and nothing else changes: that is how a damaged database is restored.`

  static override examples = [
    '<%= config.bin %> checkout HEAD~1',
    '<%= config.bin %> checkout main',
    '<%= config.bin %> checkout v1 --tile 12,-3 --tile 12,-4',
    '<%= config.bin %> checkout HEAD --bbox 0,0,15,15 --force',
    '<%= config.bin %> checkout -b experiment',
    '<%= config.bin %> checkout HEAD~3 --dry-run',
    '<%= config.bin %> checkout HEAD --into restored.db',
  ]

  static override args = {revision: Args.string({description: 'revision to check out (default HEAD with -b)'})}
  static override flags = {
    force: Flags.boolean({char: 'f', description: 'overwrite uncommitted changes (they are saved first)'}),
    tile: Flags.string({description: 'restore only tile X,Y (repeatable)', multiple: true}),
    bbox: Flags.string({description: 'restore only tiles inside x0,y0,x1,y1'}),
    branch: Flags.string({char: 'b', description: 'create a branch at the revision and switch to it'}),
    'dry-run': Flags.boolean({description: 'show the rows and tiles that would change, writing nothing', exclusive: ['branch']}),
    into: Flags.string({description: 'write the revision into this new database file instead (the working database is not touched): restores a damaged database', exclusive: ['branch', 'tile', 'bbox', 'force', 'dry-run']}),
  }

  async run(): Promise<CheckoutResult | CheckoutIntoResult> {
    const {args, flags} = await this.parse(Checkout)
    const ws = await this.workspace()
    if (flags.into) {
      if (!args.revision) this.error('give the revision to write (e.g. HEAD)', {exit: 2})
      const r = await checkoutInto(ws, args.revision, flags.into)
      this.say(`Wrote ${args.revision} (${short(r.target)}) into ${r.file}: ${r.rows} rows. The working database was not changed.`)
      return r
    }
    let result: CheckoutResult
    if (flags.branch) {
      result = await switchBranch(ws, flags.branch, {create: true, from: args.revision, force: flags.force})
    } else {
      if (!args.revision) this.error('give a revision to check out (e.g. HEAD~1, main, a commit id)', {exit: 2})
      result = await checkout(ws, {
        revision: args.revision, force: flags.force,
        tiles: flags.tile?.map(parseTile), bbox: flags.bbox ? parseBBox(flags.bbox) : undefined, dryRun: flags['dry-run'],
        // Said before anything is written: the user may rather pause the pipeline first.
        onInUse: (users) => this.say(flags['dry-run']
          ? `Note: the database is open in ${describeUsers(users)}; a checkout would write beside it (only the rows that change, in one short transaction that program's writes wait for).`
          : `Note: the database is open in ${describeUsers(users)}; checking out beside it: only the rows that change are written, in one short transaction that program's writes wait for, and its later writes are kept.`),
      })
    }
    if (result.dryRun) {
      if (result.wouldSave) this.say('Would first save your uncommitted changes as a commit (see `tilesync reflog saved`).')
      const what = `${result.rowsWritten} rows written, ${result.rowsDeleted} deleted, ${result.tilesChanged} tile(s) changed`
      if (result.partial) this.say(`Would restore ${result.tilesChanged} tile(s) from ${short(result.target)} (${what}); nothing was changed.`)
      else this.say(`Would check out ${args.revision} (${short(result.target)})${result.detached ? ', HEAD detached' : ''}: ${what}; nothing was changed.`)
      return result
    }
    if (result.savedAs) this.say(`Saved your uncommitted changes as ${short(result.savedAs)}: get them back with \`tilesync checkout ${short(result.savedAs)}\`.`)
    if (result.partial) this.say(`Restored ${result.tilesChanged} tile(s) from ${short(result.target)}; HEAD unchanged (see \`tilesync status\`).`)
    else if (result.detached) this.say(`HEAD is now detached at ${args.revision} (${short(result.target)}): ${result.rowsWritten} rows written, ${result.rowsDeleted} deleted.`)
    else {
      const head = await ws.repo.refs.readHead()
      const branch = flags.branch ?? (head.kind === 'branch' ? head.branch : args.revision)
      // `checkout HEAD` (e.g. --force to throw changes away) stays on its branch, as in git.
      if (!flags.branch && branch !== args.revision) this.say(`Still on branch ${branch}; the database is back at ${args.revision} (${short(result.target)}): ${result.rowsWritten} rows written, ${result.rowsDeleted} deleted.`)
      else this.say(`Switched to ${branch} (${short(result.target)}): ${result.rowsWritten} rows written, ${result.rowsDeleted} deleted.`)
    }
    return result
  }
}
