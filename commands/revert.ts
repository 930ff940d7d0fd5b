import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatChangeSet, short} from '../src/cli/format.js'
import {parseTile} from '../src/ops/checkout.js'
import {abortRevert, resolveRevert, revert, type RevertResult, revertStatus} from '../src/ops/revert.js'

export default class Revert extends TilesyncCommand {
  static override summary = 'Undo a commit with a new commit (history stays linear), or return to a revision\'s content with --to.'
  static override description = 'REV alone: a new commit on HEAD that takes back exactly what REV changed, per tile and per layer, and keeps every later change. Where a later commit changed the same cell again, the revert stops with conflicts, as a merge does, and leaves the database untouched: list them with --status, settle them with --ours (keep the current value) or --theirs (take the value from before REV), optionally per --tile, or give up with --abort. A merge commit is undone against its first parent. With --to the new commit\'s content equals REV (every table), like `checkout REV` followed by a commit. Either way nothing is rewritten, so the result pushes without --force. Refuses over uncommitted changes; --dry-run lists the tiles it would change and writes nothing.'

  static override examples = [
    '<%= config.bin %> revert HEAD~2',
    '<%= config.bin %> revert 3f9a1c2e7b --dry-run',
    '<%= config.bin %> revert v1 --to',
    '<%= config.bin %> revert --status',
    '<%= config.bin %> revert --theirs --tile 3,4',
    '<%= config.bin %> revert --ours',
    '<%= config.bin %> revert --abort',
  ]

  static override args = {revision: Args.string({description: 'the commit to undo (or, with --to, to return to)'})}
  static override flags = {
    to: Flags.boolean({description: 'make a commit whose content equals REV instead of undoing REV\'s own changes'}),
    'dry-run': Flags.boolean({description: 'list the tiles the revert would change (and any conflicts), writing nothing'}),
    status: Flags.boolean({description: 'list the conflicts of the revert in progress', exclusive: ['ours', 'theirs', 'abort', 'to', 'dry-run']}),
    ours: Flags.boolean({description: 'settle conflicts keeping the current value', exclusive: ['theirs', 'abort', 'to', 'dry-run']}),
    theirs: Flags.boolean({description: 'settle conflicts taking the value from before REV', exclusive: ['ours', 'abort', 'to', 'dry-run']}),
    tile: Flags.string({description: 'with --ours/--theirs: only this tile X,Y (repeatable)', multiple: true}),
    abort: Flags.boolean({description: 'abandon the revert in progress (the database was never touched)', exclusive: ['to', 'dry-run']}),
  }

  async run(): Promise<RevertResult> {
    const {args, flags} = await this.parse(Revert)
    const ws = await this.workspace()
    let r: RevertResult
    if (flags.abort) r = await abortRevert(ws)
    else if (flags.ours || flags.theirs) r = await resolveRevert(ws, flags.ours ? 'ours' : 'theirs', flags.tile?.map(parseTile))
    else if (flags.status) r = await revertStatus(ws)
    else if (args.revision) r = await revert(ws, {revision: args.revision, mode: flags.to ? 'to' : 'undo', dryRun: flags['dry-run']})
    else this.error('give a revision to revert, or --status, --ours, --theirs, --abort', {exit: 2})
    const what = r.mode === 'to' ? `revert to ${short(r.revision)}` : `revert of ${short(r.revision)}`
    switch (r.outcome) {
      case 'aborted': this.say('Revert aborted; the database is as it was.'); break
      case 'nothing-to-revert': this.say(r.mode === 'to' ? `Nothing to do: HEAD already holds the content of ${short(r.revision)}.` : `Nothing to revert: HEAD no longer holds the changes of ${short(r.revision)}.`); break
      case 'committed': {
        const s = r.changes?.summary
        this.say(`[${short(r.head)}] ${what}: ${s ? `${s.tilesAdded} tiles added, ${s.tilesModified} modified, ${s.tilesDeleted} deleted; ` : ''}${r.rowsWritten} rows written.`)
        break
      }
      case 'dry-run': {
        const lines = r.changes ? formatChangeSet(r.changes, {limit: 200}) : []
        this.say(`The ${what} would change ${r.changes?.tiles.length ?? 0} tile(s)${r.conflicts.length ? ` and stop with ${r.conflicts.length} conflict(s)` : ''}; nothing was changed.`)
        for (const line of lines) this.say(line)
        for (const c of r.conflicts) this.say(`  conflict: ${c.table} ${c.key}${c.columns.length ? `: ${c.columns.join(', ')}` : ''} (${c.kind})`)
        break
      }
      case 'conflicts': {
        this.say(`${r.conflicts.length} conflict(s) remain; the database was not changed:`)
        for (const c of r.conflicts) this.say(`  ${c.table} ${c.key}${c.columns.length ? `: ${c.columns.join(', ')}` : ''} (${c.kind})`)
        this.say('Resolve with `tilesync revert --theirs` (undo anyway) / `--ours` (keep the current value), optionally --tile X,Y, or `tilesync revert --abort`.')
        if (!flags.status) process.exitCode = 1
      }
    }
    return r
  }
}
