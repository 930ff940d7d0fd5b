import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import {createRef, deleteRef, listBranches, type RefListing} from '../src/ops/branches.js'

export default class Branch extends TilesyncCommand {
  static override summary = 'List, create or delete branches.'
  static override examples = ['<%= config.bin %> branch', '<%= config.bin %> branch night-run', '<%= config.bin %> branch hotfix v1', '<%= config.bin %> branch -d night-run']
  static override args = {
    name: Args.string({description: 'branch to create'}),
    start: Args.string({description: 'where it starts (default HEAD)'}),
  }

  static override flags = {delete: Flags.boolean({char: 'd', description: 'delete the branch'})}

  async run(): Promise<{branches: RefListing[]}> {
    const {args, flags} = await this.parse(Branch)
    const ws = await this.workspace()
    if (args.name && flags.delete) {
      const b = await deleteRef(ws, 'heads', args.name)
      this.say(`Deleted branch ${b.name} (was ${short(b.id)})`)
      return {branches: [b]}
    }
    if (args.name) {
      const b = await createRef(ws, 'heads', args.name, args.start)
      this.say(`Created branch ${b.name} at ${short(b.id)}`)
      return {branches: [b]}
    }
    const branches = await listBranches(ws)
    for (const b of branches) this.say(`${b.current ? '*' : ' '} ${b.name}  ${short(b.id)}`)
    return {branches}
  }
}
