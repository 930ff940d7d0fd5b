import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatBytes} from '../src/cli/format.js'
import {DEFAULT_GRACE_MS} from '../src/ops/gc.js'
import {describePrune, pruneRemote, type PruneResult} from '../src/ops/prune.js'
import {formatDuration, parseDuration} from '../src/util/duration.js'

export default class Prune extends TilesyncCommand {
  static override summary = 'On a remote, keep the last N commits of every branch and remove what only older commits used.'
  static override description = `Follows each branch's first parents back N commits and removes every object on the remote those commits do not reach (older commits included). The oldest kept commits become shallow roots, recorded on the remote before anything is removed: clone, fetch and log end history there. Objects modified less than the grace period ago are never removed, so a push running at the same time keeps everything it uploads. Local repositories are not touched: clones that have the older commits keep them.`

  static override examples = [
    '<%= config.bin %> prune origin --keep-last 20 --dry-run',
    '<%= config.bin %> prune origin --keep-last 20',
    '<%= config.bin %> prune production --keep-last 5 --grace 1d',
  ]

  static override args = {remote: Args.string({description: 'remote name', required: true})}
  static override flags = {
    'keep-last': Flags.integer({description: 'commits to keep on each branch (first-parent chain)', required: true, min: 1}),
    'dry-run': Flags.boolean({description: 'only say what would be removed'}),
    grace: Flags.string({description: `never remove objects modified less than this ago (e.g. 30m, 2h, 1d; default ${formatDuration(DEFAULT_GRACE_MS)})`}),
  }

  async run(): Promise<PruneResult> {
    const {args, flags} = await this.parse(Prune)
    const graceMs = flags.grace === undefined ? DEFAULT_GRACE_MS : parseDuration(flags.grace)
    const ws = await this.workspace()
    const r = await pruneRemote(ws.repo, args.remote, {keepLast: flags['keep-last'], dryRun: flags['dry-run'], graceMs})
    this.say(`${r.dryRun ? 'Would keep' : 'Kept'} ${r.keptCommits} commit(s) on ${r.remote}:`)
    for (const line of describePrune(r)) this.say(line)
    this.say(`${r.dryRun ? 'Would remove' : 'Removed'} ${r.removed.objects} object(s) (${formatBytes(r.removed.bytes)}) and ${r.tmp.objects} temp key(s); ${r.reachable} object(s) kept.`)
    if (r.young.objects) this.say(`Kept ${r.young.objects} unreferenced object(s) (${formatBytes(r.young.bytes)}) younger than ${formatDuration(r.graceMs)}.`)
    return r
  }
}
