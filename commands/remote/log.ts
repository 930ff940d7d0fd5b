import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../../src/cli/base-command.js'
import {formatBytes, short} from '../../src/cli/format.js'
import {readSyncLog, type SyncLogEntry} from '../../src/ops/sync-log.js'

function formatSyncEntry(e: SyncLogEntry): string {
  const time = e.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z')
  const move = e.from === undefined && e.to === undefined ? '' : `${short(e.from)} -> ${short(e.to)}`
  const amount = e.objects === undefined ? '' : `${e.objects} objects, ${formatBytes(e.bytes ?? 0)}`
  const took = e.durationMs < 1000 ? `${e.durationMs} ms` : `${(e.durationMs / 1000).toFixed(1)} s`
  const outcome = e.result === 'error' ? `error: ${e.error ?? 'unknown'}` : e.result
  return [time, e.op.padEnd(7), `${e.remote}${e.branch ? `/${e.branch}` : ''}`, move, amount, took, outcome].filter(Boolean).join('  ')
}

export default class RemoteLog extends TilesyncCommand {
  static override summary = 'Show the sync log: every push, pull, fetch, clone, promote and publish, with its outcome.'
  static override description = `One line per operation, oldest first, from .tilesync/sync-log.jsonl: time, operation,
remote/branch, from -> to (commit ids), objects and bytes moved, duration, and ok, dry-run or the
error it stopped with.`

  static override examples = [
    '<%= config.bin %> remote log',
    '<%= config.bin %> remote log origin -n 20',
    '<%= config.bin %> remote log production --json',
  ]

  static override args = {name: Args.string({description: 'only this remote'})}
  static override flags = {
    number: Flags.integer({char: 'n', description: 'only the last N entries', min: 1}),
  }

  async run(): Promise<{entries: SyncLogEntry[]}> {
    const {args, flags} = await this.parse(RemoteLog)
    const ws = await this.workspace()
    let entries = await readSyncLog(ws.repo, args.name)
    if (flags.number) entries = entries.slice(-flags.number)
    if (entries.length === 0) this.say(args.name ? `Nothing recorded for remote "${args.name}".` : 'Nothing recorded yet: push, pull, fetch or clone first.')
    for (const e of entries) this.say(formatSyncEntry(e))
    return {entries}
  }
}
