import {Flags} from '@oclif/core'

import {TilesyncCommand} from '../../src/cli/base-command.js'
import {formatBytes, short} from '../../src/cli/format.js'
import {describeReleaseChanges} from '../../src/release/changes.js'
import {prepareRelease, type PrepareResult, REPORT_FILE} from '../../src/release/prepare.js'

export default class ReleasePrepare extends TilesyncCommand {
  static override summary = 'Stage the current commit and propose it as a release: a manifest committed to a new git branch for review.'
  static override description = `Pushes the current commit's branch to the staging remote, then writes tilesync.release.json
(dataset name, staging remote name and URL, branch, commit id, tile, row, blob and byte counts,
created-at) beside .tilesync/ in the surrounding git repository, on a new git branch, and commits
it there (no git binary needed). The commit's message lists what changed since the release
committed at git HEAD: tiles added, modified and deleted, per image layer, and \`tilesync diff
--stat\` between the two commits; with --html the \`diff --html\` report is committed too. Warns
when git does not ignore .tilesync/ or .env. Push that branch and open a pull request; once it is merged,
\`tilesync release publish --production REMOTE\` (e.g. in CI) puts the commit live.

Refuses before pushing anything when the git branch already exists or other changes are staged
in git (they would be committed with the manifest).`

  static override examples = [
    '<%= config.bin %> release prepare --staging staging',
    '<%= config.bin %> release prepare --staging staging --name city-tiles --branch main',
    '<%= config.bin %> release prepare --staging staging --git-branch release/june',
    '<%= config.bin %> release prepare --staging staging --html',
  ]

  static override flags = {
    staging: Flags.string({description: 'staging remote to push the commit to', required: true}),
    name: Flags.string({description: 'dataset name (default: the directory holding .tilesync/)'}),
    branch: Flags.string({char: 'b', description: 'tilesync branch released (pushed to staging, moved on production); default the current one'}),
    'git-branch': Flags.string({description: 'git branch to create for the review (default release/NAME-COMMIT)'}),
    html: Flags.boolean({description: `also commit the \`diff --html\` report of the change since the last release (${REPORT_FILE}, beside the manifest)`}),
  }

  async run(): Promise<PrepareResult> {
    const {flags} = await this.parse(ReleasePrepare)
    const r = await prepareRelease(await this.workspace(), {staging: flags.staging, name: flags.name, branch: flags.branch, gitBranch: flags['git-branch'], html: flags.html})
    for (const w of r.warnings) this.warnLine(w.message)
    const p = r.push
    const m = r.manifest
    if (p.upToDate) this.say(`${p.remote}/${p.branch} already at ${short(p.to)}; nothing to push.`)
    else this.say(`Pushed ${p.commits} commit(s) to ${p.remote}/${p.branch}: ${p.objects} objects, ${formatBytes(p.bytes)} (${short(p.from)} -> ${short(p.to)}).`)
    this.say(`Release "${m.name}": commit ${short(m.commit)} on ${m.branch}, ${m.tiles} tiles, ${m.rows} rows, ${m.blobs} blobs, ${formatBytes(m.bytes)}.`)
    for (const line of describeReleaseChanges(r.changes, r.previous)) this.say(line)
    this.say(`Wrote ${r.manifestPath}${r.report ? ` and ${r.report}` : ''} and committed it on git branch ${r.gitBranch} (${r.gitCommit.slice(0, 7)}).`)
    this.say('Next steps:')
    r.nextSteps.forEach((s, i) => this.say(`  ${i + 1}. ${s}`))
    return r
  }
}
