import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../../src/cli/base-command.js'
import {addRemote, type RemoteListing} from '../../src/ops/remotes.js'

export default class RemoteAdd extends TilesyncCommand {
  static override summary = 'Add a remote: a directory (or file:// URL), r2://BUCKET/prefix, s3://BUCKET/prefix or oxen://NAMESPACE/REPO.'
  static override description = `Credentials are never stored: R2 remotes read R2_ACCOUNT_ID, R2_ACCESS_KEY_ID and
R2_SECRET_ACCESS_KEY; S3 remotes read AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; oxen remotes read
OXEN_API_TOKEN (or the oxen CLI's auth_config.toml). A .env file in the working directory is read too.`

  static override examples = [
    '<%= config.bin %> remote add origin /mnt/nas/tiles',
    '<%= config.bin %> remote add origin file:///srv/tiles',
    '<%= config.bin %> remote add origin r2://my-bucket/city-tiles',
    '<%= config.bin %> remote add minio s3://tiles/prod --endpoint http://127.0.0.1:9000',
    '<%= config.bin %> remote add hub oxen://my-team/city-tiles',
  ]

  static override args = {
    name: Args.string({required: true, description: 'remote name, e.g. origin'}),
    url: Args.string({required: true, description: 'where it is'}),
  }

  static override flags = {
    endpoint: Flags.string({description: 'S3-compatible endpoint URL (s3:// remotes, or to override R2\'s)'}),
    region: Flags.string({description: 'S3 region (default auto)'}),
    host: Flags.string({description: 'oxen server host (default hub.oxen.ai)'}),
  }

  async run(): Promise<RemoteListing> {
    const {args, flags} = await this.parse(RemoteAdd)
    const ws = await this.workspace()
    const r = await addRemote(ws.repo, args.name, args.url, {endpoint: flags.endpoint, region: flags.region, host: flags.host})
    this.say(`Added remote ${r.name} -> ${r.url}`)
    return r
  }
}
