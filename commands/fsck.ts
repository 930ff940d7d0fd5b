import {Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatBytes, short} from '../src/cli/format.js'
import {fsckLocal, fsckRemote, type FsckResult} from '../src/ops/fsck.js'

export default class Fsck extends TilesyncCommand {
  static override summary = 'Check that every ref points at a complete commit and every object is present and sound.'
  static override description = `Walks every ref (HEAD, branches, tags, remote branches, refs/saved, a merge in progress) and every commit in their history: each object is read once, hashed against its id and decoded as what refers to it says it is. Commits kept only by reflogs are checked too and listed as recoverable. Each problem is one line saying what is wrong and what to do; the exit code is 1 when there is any. With --remote the same is done on a remote's branches (each object is read back from the remote). --repair brings back what is missing or damaged: locally from the configured remotes, on a remote (with --remote) from the local store.`

  static override examples = [
    '<%= config.bin %> fsck',
    '<%= config.bin %> fsck --remote origin',
    '<%= config.bin %> fsck --repair',
    '<%= config.bin %> fsck --json',
    '<%= config.bin %> fsck --database',
  ]

  static override flags = {
    remote: Flags.string({description: 'check this remote instead of the local repository'}),
    repair: Flags.boolean({description: 'fetch (or, with --remote, upload) missing and damaged objects again'}),
    database: Flags.boolean({description: "run SQLite's check of the database even while another process has it open (its writes wait for the check)", exclusive: ['remote']}),
  }

  async run(): Promise<FsckResult> {
    const {flags} = await this.parse(Fsck)
    const ws = await this.workspace()
    let result: FsckResult
    if (flags.remote) {
      result = await fsckRemote(ws, flags.remote, {repair: flags.repair})
    } else {
      result = await fsckLocal(ws, {repair: flags.repair, database: flags.database})
    }
    const where = result.where === 'local' ? 'this repository' : `remote ${result.where}`
    this.say(`Checked ${where}: ${result.refs.length} ref(s), ${result.commits} commit(s), ${result.objects} objects (${formatBytes(result.bytes)}).`)
    if (result.repaired) this.say(`Repaired ${result.repaired} object(s).`)
    if (result.databaseSkipped) this.say(`Note: ${result.databaseSkipped}.`)
    for (const p of result.problems) this.say(`  problem: ${p.message}`)
    if (result.promised) this.say(`Partial clone: ${result.promised.objects} image(s) outside its region are left on ${result.promised.remote} and fetched when a command needs them.`)
    if (result.shallow.length) this.say(`History is cut (pruned) below ${result.shallow.map(short).join(', ')}.`)
    const lost = result.recoverable.filter((r) => r.complete)
    if (lost.length) {
      this.say(`${lost.length} commit(s) are on no branch but kept by reflogs; get one back with \`tilesync checkout ID\` or \`tilesync branch NAME ID\`:`)
      for (const r of lost.slice(0, 10)) this.say(`  ${short(r.id)}  ${r.reflog.replace(/^refs\//, '')}: ${r.message}`)
      if (lost.length > 10) this.say(`  … ${lost.length - 10} more (--json lists all)`)
    }
    const broken = result.recoverable.filter((r) => !r.complete)
    if (broken.length) this.say(`${broken.length} commit(s) named only by reflogs are incomplete (nothing on a branch depends on them).`)
    if (result.unreferenced.objects && result.ok) {
      this.say(`${result.unreferenced.objects} object(s) (${formatBytes(result.unreferenced.bytes)}) are not used by anything: ${result.where === 'local' ? '`tilesync gc`' : `\`tilesync prune ${result.where}\``} removes them.`)
    } else if (result.unreferenced.objects) {
      this.say(`${result.unreferenced.objects} object(s) (${formatBytes(result.unreferenced.bytes)}) were not reached, some perhaps only because of the damage above.`)
    }
    if (result.ok) this.say('No problems found.')
    else {
      this.say(`${result.problems.length} problem(s) found.`)
      process.exitCode = 1
    }
    return result
  }
}
