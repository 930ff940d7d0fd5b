import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatBytes, short} from '../src/cli/format.js'
import {fetchRemote, type FetchResult} from '../src/ops/fetch.js'

export default class Fetch extends TilesyncCommand {
  static override summary = 'Download what a remote has and you lack; updates REMOTE/BRANCH refs, not the database.'
  static override examples = ['<%= config.bin %> fetch', '<%= config.bin %> fetch origin main', '<%= config.bin %> fetch --dry-run']
  static override args = {
    remote: Args.string({description: 'remote name (default origin)'}),
    branch: Args.string({description: 'only this branch'}),
  }

  static override flags = {'dry-run': Flags.boolean({description: 'show what would be downloaded'})}

  async run(): Promise<FetchResult> {
    const {args, flags} = await this.parse(Fetch)
    const r = await fetchRemote(await this.workspace(), {remote: args.remote, branch: args.branch, dryRun: flags['dry-run']})
    for (const b of r.branches) {
      if (b.from === b.to) this.say(`${r.remote}/${b.branch}: up to date (${short(b.to)})`)
      else this.say(`${r.remote}/${b.branch}: ${short(b.from)} -> ${short(b.to)}, ${b.commits} commit(s), ${b.objects} objects, ${formatBytes(b.bytes)}${r.dryRun ? ' (dry run)' : ''}`)
    }
    return r
  }
}
