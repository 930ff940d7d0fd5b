import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatBytes, short} from '../src/cli/format.js'
import {TilesyncError} from '../src/core/errors.js'
import {type DeleteBranchResult, deleteRemoteBranch} from '../src/ops/delete-remote-branch.js'
import {promote, type PromoteResult} from '../src/ops/promote.js'
import {push, type PushResult} from '../src/ops/push.js'

export default class Push extends TilesyncCommand {
  static override summary = 'Send a branch to a remote: only the objects it lacks; the remote ref moves last.'
  static override description = `Objects are uploaded first (tiles, then trees, then commits) and the branch on the remote is moved only after all of them are stored, with compare-and-swap: if someone else pushed in the meantime the push is refused ("remote moved: pull first") unless --force. An interrupted push leaves the remote branch where it was; run it again to send only what is still missing.

With --from, promotes between two remotes instead (staging -> production): the commit at the other remote's BRANCH (or --commit) is copied with the objects REMOTE lacks, server-side when both are buckets of the same S3/R2 account, then REMOTE's branch moves with compare-and-swap. It is refused if REMOTE's branch is not an ancestor of that commit; running it again copies nothing.

With --delete BRANCH, removes that branch on REMOTE instead, only if it is still where your last fetch saw it (refs/remotes/REMOTE/BRANCH): if someone pushed to it since, nothing is deleted. Its commits stay on the remote (\`tilesync prune --remote\` removes what no branch uses).`

  static override examples = [
    '<%= config.bin %> push',
    '<%= config.bin %> push origin main',
    '<%= config.bin %> push origin --dry-run',
    '<%= config.bin %> push production --from staging main',
    '<%= config.bin %> push production --from staging --commit 3f2a9c01d4 --dry-run',
    '<%= config.bin %> push origin --delete night-run',
    '<%= config.bin %> push origin --delete night-run --dry-run',
  ]

  static override args = {
    remote: Args.string({description: 'remote name (default origin)'}),
    branch: Args.string({description: 'branch (default the current one)'}),
  }

  static override flags = {
    force: Flags.boolean({char: 'f', description: 'move the remote branch even if it is not an ancestor'}),
    'dry-run': Flags.boolean({description: 'show what would be sent without sending'}),
    prune: Flags.boolean({description: 'oxen remotes: remove image files of tiles that no longer exist (default: the dataset only grows)'}),
    from: Flags.string({description: 'promote from this remote to REMOTE (e.g. staging) instead of pushing local commits', exclusive: ['force']}),
    commit: Flags.string({description: 'with --from: promote this commit instead of the tip of the branch', dependsOn: ['from']}),
    delete: Flags.string({description: 'delete this branch on REMOTE, if it is still where your last fetch saw it', exclusive: ['force', 'from', 'prune', 'commit']}),
  }

  async run(): Promise<PushResult | PromoteResult | DeleteBranchResult> {
    const {args, flags} = await this.parse(Push)
    if (flags.delete !== undefined) {
      if (args.branch) throw new TilesyncError('BAD_ARGUMENT', `push --delete takes the branch as its value, not also "${args.branch}"`, {hint: `e.g. \`tilesync push ${args.remote ?? 'origin'} --delete ${flags.delete}\``})
      const d = await deleteRemoteBranch(await this.workspace(), {remote: args.remote, branch: flags.delete, dryRun: flags['dry-run']})
      if (d.dryRun) this.say(`Would delete ${d.remote}/${d.branch} (at ${short(d.from)}).`)
      else this.say(`Deleted ${d.remote}/${d.branch} (was ${short(d.from)}).`)
      return d
    }
    if (flags.from) {
      if (!args.remote) throw new TilesyncError('BAD_ARGUMENT', 'say which remote to promote to', {hint: 'e.g. `tilesync push production --from staging`'})
      const p = await promote(await this.workspace(), {from: flags.from, to: args.remote, branch: args.branch, commit: flags.commit, dryRun: flags['dry-run']})
      const where = `${p.to}/${p.branch}`
      if (p.upToDate) this.say(`Everything up to date (${where} at ${short(p.commit)}); 0 objects copied.`)
      else if (p.dryRun) this.say(`Would promote ${short(p.commit)} from ${p.from} to ${where}: ${p.commits} commit(s), ${p.objects} objects, ${formatBytes(p.bytes)} (${short(p.previous)} -> ${short(p.commit)}).`)
      else this.say(`Promoted ${short(p.commit)} from ${p.from} to ${where}: ${p.commits} commit(s), ${p.objects} objects, ${formatBytes(p.bytes)}${p.copiedServerSide ? ' copied server-side' : ''}${p.skipped ? ` (${p.skipped} already copied earlier)` : ''} (${short(p.previous)} -> ${short(p.commit)}).`)
      return p
    }
    const r = await push(await this.workspace(), {remote: args.remote, branch: args.branch, force: flags.force, dryRun: flags['dry-run'], prune: flags.prune})
    if (r.upToDate) this.say(`Everything up to date (${r.remote}/${r.branch} at ${short(r.to)}); 0 objects sent.`)
    else if (r.dryRun) this.say(`Would push ${r.commits} commit(s) to ${r.remote}/${r.branch}: ${r.objects} objects, ${formatBytes(r.bytes)}${r.skipped ? ` (${r.skipped} already sent earlier)` : ''} (${short(r.from)} -> ${short(r.to)}).`)
    else this.say(`Pushed ${r.commits} commit(s) to ${r.remote}/${r.branch}: ${r.objects} objects, ${formatBytes(r.bytes)}${r.skipped ? ` (${r.skipped} already sent earlier)` : ''} (${short(r.from)} -> ${short(r.to)}).`)
    return r
  }
}
