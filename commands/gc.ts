import {Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatBytes} from '../src/cli/format.js'
import {DEFAULT_GRACE_MS, gc, type GcResult, LOOSE_PACK_MIN} from '../src/ops/gc.js'
import {formatDuration, parseDuration} from '../src/util/duration.js'

export default class Gc extends TilesyncCommand {
  static override summary = 'Remove local objects that no ref, reflog, merge or push in progress can reach.'
  static override description = `Keeps everything reachable from HEAD, branches, tags, remote branches, refs/saved, every reflog entry, a merge in progress, unfinished pushes and the database's change-tracking baseline. Only objects older than the grace period (file time) are removed, and whatever a younger object refers to is kept too, so a command writing at the same time loses nothing. Also removes temp files in .tilesync/tmp older than the grace period, moves the loose files of reachable objects into a pack once there are ${LOOSE_PACK_MIN} or more (files shared by a hard link with a local remote stay), and merges many small object packs into one. Takes the repository lock.`

  static override examples = [
    '<%= config.bin %> gc --dry-run',
    '<%= config.bin %> gc',
    '<%= config.bin %> gc --grace 2h',
  ]

  static override flags = {
    'dry-run': Flags.boolean({description: 'only say what would be removed'}),
    grace: Flags.string({description: `keep unreachable objects younger than this (e.g. 30m, 2h, 1d; default ${formatDuration(DEFAULT_GRACE_MS)})`}),
  }

  async run(): Promise<GcResult> {
    const {flags} = await this.parse(Gc)
    const graceMs = flags.grace === undefined ? DEFAULT_GRACE_MS : parseDuration(flags.grace)
    const r = await gc(await this.workspace(), {dryRun: flags['dry-run'], graceMs})
    const verb = r.dryRun ? 'Would remove' : 'Removed'
    this.say(`${verb} ${r.removed.objects} unreachable object(s) (${formatBytes(r.removed.bytes)}) and ${r.tmp.files} temp file(s) (${formatBytes(r.tmp.bytes)}); ${r.reachable} reachable object(s) kept.`)
    if (r.loosePacked) this.say(`${r.dryRun ? 'Would pack' : 'Packed'} ${r.loosePacked} loose object file(s).`)
    if (r.packsMerged) this.say(`${r.dryRun ? 'Would merge' : 'Merged'} ${r.packsMerged} object pack(s) into others.`)
    if (r.young.objects) this.say(`Kept ${r.young.objects} unreachable object(s) (${formatBytes(r.young.bytes)}) younger than ${formatDuration(r.graceMs)}.`)
    if (r.youngTmp.files) this.say(`${r.dryRun ? 'Would keep' : 'Kept'} ${r.youngTmp.files} temp file(s) (${formatBytes(r.youngTmp.bytes)}) younger than ${formatDuration(r.graceMs)}: a command may still be writing them.`)
    return r
  }
}
