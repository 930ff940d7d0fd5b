import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import {parseTile} from '../src/ops/checkout.js'
import {abortMerge, mergeCommit, type MergeResult, mergeStatus, resolveMerge} from '../src/ops/merge.js'

export default class Merge extends TilesyncCommand {
  static override summary = 'Merge a revision into the current branch, or resolve / abort a merge in progress.'
  static override examples = [
    '<%= config.bin %> merge feature',
    '<%= config.bin %> merge --status',
    '<%= config.bin %> merge --theirs --tile 3,4',
    '<%= config.bin %> merge --ours',
    '<%= config.bin %> merge --abort',
  ]

  static override args = {revision: Args.string({description: 'what to merge (branch, tag, id, origin/main)'})}
  static override flags = {
    ours: Flags.boolean({description: 'resolve conflicts keeping our side', exclusive: ['theirs', 'abort']}),
    theirs: Flags.boolean({description: 'resolve conflicts taking their side', exclusive: ['ours', 'abort']}),
    tile: Flags.string({description: 'with --ours/--theirs: only this tile X,Y (repeatable)', multiple: true}),
    abort: Flags.boolean({description: 'abandon the merge in progress (the database was never touched)'}),
    status: Flags.boolean({description: 'list the conflicts of the merge in progress'}),
  }

  async run(): Promise<MergeResult> {
    const {args, flags} = await this.parse(Merge)
    const ws = await this.workspace()
    let r: MergeResult
    if (flags.abort) r = await abortMerge(ws)
    else if (flags.ours || flags.theirs) r = await resolveMerge(ws, flags.ours ? 'ours' : 'theirs', flags.tile?.map(parseTile))
    else if (flags.status) r = await mergeStatus(ws)
    else if (args.revision) r = await mergeCommit(ws, await ws.resolve(args.revision), args.revision)
    else this.error('give a revision to merge, or --ours, --theirs, --abort, --status', {exit: 2})
    // `merge --ours/--theirs/--abort` also settle a revert in progress (same machinery).
    const Kind = r.kind === 'revert' ? 'Revert' : 'Merge'
    switch (r.outcome) {
      case 'aborted': this.say(`${Kind} aborted; the database is as it was.`); break
      case 'up-to-date': this.say('Already up to date.'); break
      case 'fast-forward': this.say(`Fast-forward to ${short(r.head)}: ${r.rowsWritten} rows written.`); break
      case 'merged': this.say(`${Kind} committed as ${short(r.head)}: ${r.rowsWritten} rows written.`); break
      case 'conflicts': {
        this.say(`${r.conflicts.length} conflict(s) remain; the database was not changed:`)
        for (const c of r.conflicts) this.say(`  ${c.table} ${c.key}${c.columns.length ? `: ${c.columns.join(', ')}` : ''} (${c.kind})`)
        this.say('Resolve with `tilesync merge --theirs` / `--ours` (optionally --tile X,Y), or `tilesync merge --abort`.')
        if (!flags.status) process.exitCode = 1
      }
    }
    return r
  }
}
