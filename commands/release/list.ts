import {Flags} from '@oclif/core'

import {TilesyncCommand} from '../../src/cli/base-command.js'
import {formatBytes, short} from '../../src/cli/format.js'
import {listReleases, type ReleaseListResult} from '../../src/release/list.js'

export const productionFlags = {
  production: Flags.string({description: 'production remote (name or URL); default the remote named "production", if configured'}),
  endpoint: Flags.string({description: 'S3-compatible endpoint for --production given as an s3:// URL'}),
  region: Flags.string({description: 'S3 region for --production given as an s3:// URL'}),
  manifest: Flags.string({description: 'manifest path in the git repository (default tilesync.release.json beside .tilesync/ or here)'}),
}

export default class ReleaseList extends TilesyncCommand {
  static override summary = 'List the releases in the git history of the manifest, and what production holds of each.'
  static override description = `Every version of tilesync.release.json in the history of git HEAD, newest first: git commit,
date, tilesync commit, counts, and (with a production remote) its state there: live (production
serves it), available (production still holds it), pruned (a prune removed it), absent (never
published). Reads only; rollbacks are marked.`

  static override examples = [
    '<%= config.bin %> release list',
    '<%= config.bin %> release list --production r2://city-tiles/prod --json',
  ]

  static override flags = productionFlags

  async run(): Promise<ReleaseListResult> {
    const {flags} = await this.parse(ReleaseList)
    const r = await listReleases({production: flags.production, productionConfig: {endpoint: flags.endpoint, region: flags.region}, manifest: flags.manifest})
    if (r.releases.length === 0) this.say(`No releases: ${r.path} has no committed version in the history of git HEAD.`)
    for (const e of r.releases) {
      const m = e.manifest
      const state = r.production ? `  [${e.state}]` : ''
      const rollback = m.rollback ? `  rollback from ${short(m.rollback.from)}` : ''
      this.say(`${e.gitCommit.slice(0, 7)}  ${e.gitDate.slice(0, 16).replace('T', ' ')}  ${m.name}  ${short(m.commit)}  ${m.tiles} tiles, ${formatBytes(m.bytes)}${rollback}${state}`)
    }
    if (r.releases.length && !r.production) this.say('Give --production REMOTE to see which one production serves.')
    else if (r.production) this.say(`${r.production}/${r.branch} is at ${short(r.productionCommit)}.`)
    return r
  }
}
