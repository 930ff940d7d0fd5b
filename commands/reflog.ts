import {Args} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import type {ReflogEntry} from '../src/repo/refs.js'

export default class Reflog extends TilesyncCommand {
  static override summary = 'List every move of HEAD (or a branch), newest first: the way back after a mistaken checkout.'
  static override examples = ['<%= config.bin %> reflog', '<%= config.bin %> reflog main', '<%= config.bin %> checkout HEAD@{1}']
  static override args = {ref: Args.string({description: 'HEAD (default), a branch name, or "saved"'})}

  async run(): Promise<{ref: string; entries: Array<ReflogEntry & {selector: string}>}> {
    const {args} = await this.parse(Reflog)
    const ws = await this.workspace()
    const name = args.ref ?? 'HEAD'
    const ref = name === 'HEAD' ? 'HEAD' : name === 'saved' ? 'refs/saved' : `refs/heads/${name}`
    const entries = (await ws.repo.refs.readReflog(ref)).reverse().map((e, i) => ({...e, selector: `${name}@{${i}}`}))
    for (const e of entries) this.say(`${short(e.new)} ${e.selector}: ${e.message} (${new Date(e.time).toISOString()})`)
    if (entries.length === 0) this.say(`No reflog for ${name}.`)
    return {ref, entries}
  }
}
