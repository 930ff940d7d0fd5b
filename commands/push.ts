import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatBytes, short} from '../src/cli/format.js'
import {push, type PushResult} from '../src/ops/push.js'

export default class Push extends TilesyncCommand {
  static override summary = 'Send a branch to a remote: only the objects it lacks; the remote ref moves last.'
  static override description = `Objects are uploaded first (tiles, then trees, then commits) and the branch on the remote
is moved only after all of them are stored, with compare-and-swap: if someone else pushed in the
meantime the push is refused ("remote moved: pull first") unless --force. An interrupted push
leaves the remote branch where it was; run it again to send only what is still missing.`

  static override examples = [
    '<%= config.bin %> push',
    '<%= config.bin %> push origin main',
    '<%= config.bin %> push origin --dry-run',
  ]

  static override args = {
    remote: Args.string({description: 'remote name (default origin)'}),
    branch: Args.string({description: 'branch (default the current one)'}),
  }

  static override flags = {
    force: Flags.boolean({char: 'f', description: 'move the remote branch even if it is not an ancestor'}),
    'dry-run': Flags.boolean({description: 'show what would be sent without sending'}),
  }

  async run(): Promise<PushResult> {
    const {args, flags} = await this.parse(Push)
    const r = await push(await this.workspace(), {remote: args.remote, branch: args.branch, force: flags.force, dryRun: flags['dry-run']})
    if (r.upToDate) this.say(`Everything up to date (${r.remote}/${r.branch} at ${short(r.to)}); 0 objects sent.`)
    else if (r.dryRun) this.say(`Would push ${r.commits} commit(s) to ${r.remote}/${r.branch}: up to ${r.objects} objects, ${formatBytes(r.bytes)} of tiles (${short(r.from)} -> ${short(r.to)}).`)
    else this.say(`Pushed ${r.commits} commit(s) to ${r.remote}/${r.branch}: ${r.objects} objects, ${formatBytes(r.bytes)}${r.skipped ? ` (${r.skipped} already sent earlier)` : ''} (${short(r.from)} -> ${short(r.to)}).`)
    return r
  }
}
