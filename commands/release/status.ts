import {TilesyncCommand} from '../../src/cli/base-command.js'
import {short} from '../../src/cli/format.js'
import {releaseStatus, type ReleaseStatusResult} from '../../src/release/list.js'
import {productionFlags} from './list.js'

export default class ReleaseStatus extends TilesyncCommand {
  static override summary = 'Which release is committed at git HEAD, and which one production serves.'
  static override description = `Reads the manifest at git HEAD and production's branch: "in sync" when production serves
HEAD's release, "pending" when the next \`release publish\` would change production (and to
what), and which earlier release production serves, if any. Reads only.`

  static override examples = [
    '<%= config.bin %> release status',
    '<%= config.bin %> release status --production production --json',
  ]

  static override flags = productionFlags

  async run(): Promise<ReleaseStatusResult> {
    const {flags} = await this.parse(ReleaseStatus)
    const r = await releaseStatus({production: flags.production, productionConfig: {endpoint: flags.endpoint, region: flags.region}, manifest: flags.manifest})
    if (!r.head) {
      this.say(`No release: ${r.path} is not committed at git HEAD.`)
      return r
    }
    const m = r.head.manifest
    this.say(`Release at git HEAD (${r.head.gitCommit.slice(0, 7)}): "${m.name}" commit ${short(m.commit)}${m.rollback ? ` (rollback from ${short(m.rollback.from)})` : ''}.`)
    if (!r.production) {
      this.say('Give --production REMOTE to see which release production serves.')
      return r
    }
    const serves = r.serving ? `release ${short(r.serving.manifest.commit)} (git ${r.serving.gitCommit.slice(0, 7)})` : r.productionCommit ? `commit ${short(r.productionCommit)}, which no release in this history names` : 'nothing (no such branch)'
    this.say(`${r.production}/${r.branch} serves ${serves}.`)
    if (r.status === 'in-sync') this.say('In sync: production serves the release at git HEAD.')
    else this.say(`Pending: \`tilesync release publish\` would ${m.rollback ? 'roll production back' : 'move production'} to ${short(m.commit)}.`)
    return r
  }
}
