import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../../src/cli/base-command.js'
import {formatBytes, short} from '../../src/cli/format.js'
import {TilesyncError} from '../../src/core/errors.js'
import {assertConfirmed, destroyRemote, type DestroyResult} from '../../src/ops/destroy-remote.js'

export default class RemoteDestroy extends TilesyncCommand {
  static override summary = 'Delete everything tilesync stored on a remote (objects, refs, metadata; an oxen hub repository), after you type its name.'
  static override description = `First shows what would go: the branches, the commits they reach, the objects and bytes, the keys. Then asks you to type the remote's name; without a terminal (scripts, CI) it needs --confirm NAME, spelled exactly. --dry-run only shows.

Only what tilesync wrote is removed: other files in the same bucket prefix or directory stay. On an oxen remote the hub repository itself is deleted, with every branch and commit on it. If someone pushes between what you were shown and the deletion, nothing is removed. The remote stays configured here (its remote-tracking refs and push state go): \`tilesync push\` starts it again, \`tilesync remote remove\` forgets it.`

  static override examples = [
    '<%= config.bin %> remote destroy staging --dry-run',
    '<%= config.bin %> remote destroy staging              # asks you to type "staging"',
    '<%= config.bin %> remote destroy staging --confirm staging --json   # scripts and CI',
  ]

  static override args = {name: Args.string({required: true, description: 'remote name'})}

  static override flags = {
    confirm: Flags.string({description: "the remote's name, typed exactly: confirms without a prompt"}),
    'dry-run': Flags.boolean({description: 'only show what would be deleted'}),
  }

  async run(): Promise<DestroyResult> {
    const {args, flags} = await this.parse(RemoteDestroy)
    const name = args.name
    // A wrong --confirm is refused before the remote is even opened.
    if (flags.confirm !== undefined) assertConfirmed(name, flags.confirm)
    const ws = await this.workspace()
    const shown = await destroyRemote(ws, name, {dryRun: true})
    this.describe(shown)
    if (flags['dry-run']) {
      this.say('Dry run: nothing was deleted.')
      return shown
    }
    let confirm = flags.confirm
    if (confirm === undefined && process.stdin.isTTY && process.stdout.isTTY && !this.jsonEnabled()) {
      const {default: input} = await import('@inquirer/input')
      try {
        confirm = await input({message: `Type the remote's name (${name}) to delete all of this for good:`})
      } catch (error) {
        // Ctrl+C or a closed terminal at the prompt.
        throw new TilesyncError('BAD_ARGUMENT', `not confirmed (${(error as Error).name === 'ExitPromptError' ? 'cancelled' : 'the prompt closed'}); nothing was removed`, {hint: `run it again and type ${name}, or pass --confirm ${name}`})
      }
    }
    const done = await destroyRemote(ws, name, {confirm, expected: shown.branches})
    this.say(`Destroyed remote ${name} (${done.url}): ${done.branches.length} branch(es), ${done.commits} commit(s)${done.bytes === null ? '' : `, ${formatBytes(done.bytes)}`} deleted. It stays configured: \`tilesync push ${name}\` starts it again, \`tilesync remote remove ${name}\` forgets it.`)
    return done
  }

  private describe(r: DestroyResult): void {
    this.say(`Remote ${r.remote} (${r.url}) holds:`)
    const branches = r.branches.map((b) => `${b.name} (${short(b.commit ?? b.version)})`)
    this.say(`  branches: ${branches.length ? branches.join(', ') : 'none'}`)
    this.say(`  commits:  ${r.commits}`)
    if (r.keys === null) {
      const files = r.objects === null ? '' : `${r.objects} file(s)`
      const bytes = r.bytes === null ? '' : formatBytes(r.bytes)
      if (files || bytes) this.say(`  files:    ${[files, bytes].filter(Boolean).join(', ')} at the default branch's head`)
    } else {
      this.say(`  objects:  ${r.objects} (${formatBytes(r.bytes ?? 0)} in all)`)
      this.say(`  keys:     ${r.keys}: ${r.what}`)
    }
    this.say(`Deleting removes the ${r.keys === null ? `${r.what}, with every branch and commit on it` : 'keys above'}; nothing else there is touched.`)
  }
}
