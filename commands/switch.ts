import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import {switchBranch} from '../src/ops/branches.js'
import type {CheckoutResult} from '../src/ops/checkout.js'

export default class Switch extends TilesyncCommand {
  static override summary = 'Switch to a branch (and make the database match it).'
  static override examples = ['<%= config.bin %> switch main', '<%= config.bin %> switch -c night-run', '<%= config.bin %> switch -c hotfix --from v1']
  static override args = {branch: Args.string({required: true, description: 'branch name'})}
  static override flags = {
    create: Flags.boolean({char: 'c', description: 'create the branch first'}),
    from: Flags.string({description: 'with -c: where the new branch starts (default HEAD)'}),
    force: Flags.boolean({char: 'f', description: 'overwrite uncommitted changes (they are saved first)'}),
  }

  async run(): Promise<CheckoutResult> {
    const {args, flags} = await this.parse(Switch)
    const result = await switchBranch(await this.workspace(), args.branch, {create: flags.create, from: flags.from, force: flags.force})
    if (result.savedAs) this.say(`Saved your uncommitted changes as ${short(result.savedAs)}.`)
    this.say(`Switched to branch ${args.branch}${result.target ? ` (${short(result.target)})` : ''}`)
    return result
  }
}
