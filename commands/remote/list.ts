import {TilesyncCommand} from '../../src/cli/base-command.js'
import {listRemotes, type RemoteListing} from '../../src/ops/remotes.js'

export default class RemoteList extends TilesyncCommand {
  static override summary = 'List remotes.'
  static override examples = ['<%= config.bin %> remote list', '<%= config.bin %> remote list --json']

  async run(): Promise<{remotes: RemoteListing[]}> {
    await this.parse(RemoteList)
    const remotes = listRemotes((await this.workspace()).repo)
    if (remotes.length === 0) this.say('No remotes. Add one with `tilesync remote add origin PATH_OR_URL`.')
    for (const r of remotes) this.say(`${r.name}\t${r.url}${r.endpoint ? ` (endpoint ${r.endpoint})` : ''}${r.host ? ` (host ${r.host})` : ''}`)
    return {remotes}
  }
}
