import {Args} from '@oclif/core'

import {TilesyncCommand} from '../../src/cli/base-command.js'
import {type RemoteListing, removeRemote} from '../../src/ops/remotes.js'

export default class RemoteRemove extends TilesyncCommand {
  static override summary = 'Forget a remote (nothing on the remote is deleted).'
  static override examples = ['<%= config.bin %> remote remove origin']
  static override args = {name: Args.string({required: true, description: 'remote name'})}

  async run(): Promise<RemoteListing> {
    const {args} = await this.parse(RemoteRemove)
    const r = await removeRemote((await this.workspace()).repo, args.name)
    this.say(`Removed remote ${r.name} (${r.url})`)
    return r
  }
}
