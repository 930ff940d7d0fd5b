import {Flags} from '@oclif/core'

import {TilesyncCommand} from '../../src/cli/base-command.js'
import {formatBytes, short} from '../../src/cli/format.js'
import {describeReleaseChanges} from '../../src/release/changes.js'
import {REPORT_FILE} from '../../src/release/prepare.js'
import {prepareRollback, type RollbackResult} from '../../src/release/rollback.js'

export default class ReleaseRollback extends TilesyncCommand {
  static override summary = 'Propose putting an earlier release back live: a rollback manifest committed to a new git branch for review.'
  static override description = `Writes tilesync.release.json naming the commit given with --to (a release manifest file, or a
tilesync revision: commit id, tag, HEAD~2), marked as a rollback from the release committed at
git HEAD, and commits it on a new git branch (as \`release prepare\` does; the commit message lists
what changes back). Nothing is pushed: the commit must still be complete on the staging remote the
current release names (checked: every tree read, every blob listed). Push the branch, open a
pull request; after the merge \`tilesync release publish\` moves production back to exactly that
commit, provided production still serves the release the rollback was prepared against
(otherwise it refuses with exit 1 and changes nothing).`

  static override examples = [
    '<%= config.bin %> release rollback --to 4f1c2a9e07',
    '<%= config.bin %> release rollback --to HEAD~1',
    '<%= config.bin %> release rollback --to old/tilesync.release.json --git-branch release/undo-june',
  ]

  static override flags = {
    to: Flags.string({description: 'release to go back to: a manifest file, or a tilesync commit / revision', required: true}),
    'git-branch': Flags.string({description: 'git branch to create for the review (default release/NAME-rollback-COMMIT)'}),
    html: Flags.boolean({description: `also commit the \`diff --html\` report of what changes back (${REPORT_FILE})`}),
  }

  async run(): Promise<RollbackResult> {
    const {flags} = await this.parse(ReleaseRollback)
    const r = await prepareRollback(await this.workspace(), {to: flags.to, gitBranch: flags['git-branch'], html: flags.html})
    for (const w of r.warnings) this.warnLine(w.message)
    const m = r.manifest
    this.say(`Rollback "${m.name}": production ${m.branch} goes back from ${short(r.from)} to ${short(m.commit)} (${m.tiles} tiles, ${m.rows} rows, ${m.blobs} blobs, ${formatBytes(m.bytes)}; verified on staging remote "${m.remote.name}").`)
    for (const line of describeReleaseChanges(r.changes, r.from)) this.say(line)
    this.say(`Wrote ${r.manifestPath}${r.report ? ` and ${r.report}` : ''} and committed it on git branch ${r.gitBranch} (${r.gitCommit.slice(0, 7)}).`)
    this.say('Next steps:')
    r.nextSteps.forEach((s, i) => this.say(`  ${i + 1}. ${s}`))
    return r
  }
}
