import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import {createRef, deleteRef, listTags, type RefListing} from '../src/ops/branches.js'

export default class Tag extends TilesyncCommand {
  static override summary = 'List, create or delete tags (fixed names for commits, e.g. releases).'
  static override examples = ['<%= config.bin %> tag', '<%= config.bin %> tag v1', '<%= config.bin %> tag before-rerun HEAD~2', '<%= config.bin %> tag -d v1']
  static override args = {
    name: Args.string({description: 'tag to create'}),
    revision: Args.string({description: 'commit to tag (default HEAD)'}),
  }

  static override flags = {delete: Flags.boolean({char: 'd', description: 'delete the tag'})}

  async run(): Promise<{tags: RefListing[]}> {
    const {args, flags} = await this.parse(Tag)
    const ws = await this.workspace()
    if (args.name && flags.delete) {
      const t = await deleteRef(ws, 'tags', args.name)
      this.say(`Deleted tag ${t.name} (was ${short(t.id)})`)
      return {tags: [t]}
    }
    if (args.name) {
      const t = await createRef(ws, 'tags', args.name, args.revision)
      this.say(`Tagged ${short(t.id)} as ${t.name}`)
      return {tags: [t]}
    }
    const tags = await listTags(ws)
    for (const t of tags) this.say(`${t.name}  ${short(t.id)}`)
    return {tags}
  }
}
