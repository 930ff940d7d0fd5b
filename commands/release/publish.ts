import {Flags} from '@oclif/core'

import {TilesyncCommand} from '../../src/cli/base-command.js'
import {formatBytes, short} from '../../src/cli/format.js'
import {publishRelease, type PublishResult} from '../../src/release/publish.js'

export default class ReleasePublish extends TilesyncCommand {
  static override summary = 'Put the release named by tilesync.release.json at git HEAD live on production (run after the merge, e.g. in CI).'
  static override description = `Reads the manifest as committed at HEAD of the surrounding git repository, checks that its
commit is complete on the staging remote (every tree read and verified by hash, every blob listed
with its size) and holds what the manifest says, copies what production lacks (server-side when
both remotes are buckets of one account), then moves production's branch with compare-and-swap.

Running it again changes nothing: production already has the commit. A manifest naming a commit
older than what production serves fails (RELEASE_SUPERSEDED, exit 1) unless it was written by
\`tilesync release rollback\`: then production moves back to exactly that commit, provided it still
serves the release the rollback was prepared against. A manifest naming a commit that staging
lacks fails before production is touched.

REMOTE is a configured remote name or a URL (s3://..., r2://..., a directory). Without a tilesync
repository around the working directory (a CI checkout of the git repository only), remotes must
be given as URLs; staging defaults to the location the manifest records. Credentials come from
the environment, as for every remote.`

  static override examples = [
    '<%= config.bin %> release publish --production production',
    '<%= config.bin %> release publish --production r2://city-tiles/prod --staging r2://city-tiles-staging/prod',
    '<%= config.bin %> release publish --production production --dry-run',
    '<%= config.bin %> release publish --production s3://tiles-prod/city --endpoint https://s3.example.com --staging s3://tiles-staging/city --staging-endpoint https://s3.example.com',
  ]

  static override flags = {
    production: Flags.string({description: 'production remote (name or URL)', required: true}),
    staging: Flags.string({description: 'staging remote (name or URL); default the one the manifest records'}),
    endpoint: Flags.string({description: 'S3-compatible endpoint for --production given as an s3:// URL'}),
    region: Flags.string({description: 'S3 region for --production given as an s3:// URL'}),
    'staging-endpoint': Flags.string({description: 'S3-compatible endpoint for --staging given as an s3:// URL'}),
    'staging-region': Flags.string({description: 'S3 region for --staging given as an s3:// URL'}),
    manifest: Flags.string({description: 'manifest path in the git repository (default tilesync.release.json beside .tilesync/ or here)'}),
    'dry-run': Flags.boolean({description: 'verify staging and show what would be copied, without copying or moving anything'}),
  }

  async run(): Promise<PublishResult> {
    const {flags} = await this.parse(ReleasePublish)
    const r = await publishRelease({
      production: flags.production, productionConfig: {endpoint: flags.endpoint, region: flags.region},
      staging: flags.staging, stagingConfig: {endpoint: flags['staging-endpoint'], region: flags['staging-region']}, manifest: flags.manifest, dryRun: flags['dry-run'],
    })
    const m = r.manifest
    const where = `${r.production}/${r.branch}`
    this.say(`Release "${m.name}" (${r.source.path} at git ${r.source.gitCommit.slice(0, 7)}): commit ${short(r.commit)}.`)
    if (r.verified) this.say(`Verified on staging remote "${r.staging}": ${r.verified.tiles} tiles, ${r.verified.rows} rows, ${r.verified.blobs} blobs, ${formatBytes(r.verified.bytes)}.`)
    if (r.outcome === 'up-to-date') this.say(`Already published: ${where} is at ${short(r.commit)}; nothing changed.`)
    else if (r.outcome === 'rolled-back') this.say(`${r.dryRun ? 'Would roll back' : 'Rolled back'} ${where}: ${short(r.previous)} -> ${short(r.commit)} (rollback "${m.name}"), ${r.objects} objects ${r.dryRun ? 'to copy' : 'copied'}, ${formatBytes(r.bytes)}.`)
    else if (r.dryRun) this.say(`Would publish to ${where}: ${r.commits} commit(s), ${r.objects} objects, ${formatBytes(r.bytes)} (${short(r.previous)} -> ${short(r.commit)}).`)
    else this.say(`Published to ${where}: ${r.commits} commit(s), ${r.objects} objects, ${formatBytes(r.bytes)}${r.copiedServerSide ? ' copied server-side' : ''} (${short(r.previous)} -> ${short(r.commit)}).`)
    return r
  }
}
