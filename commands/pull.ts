import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatBytes, formatChangeSet, short} from '../src/cli/format.js'
import {pull, type PullResult} from '../src/ops/pull.js'
import {pullRelease} from '../src/release/consume.js'

export default class Pull extends TilesyncCommand {
  static override summary = 'Fetch a remote branch and merge it into the current branch (per tile and layer).'
  static override description = `Fast-forwards when possible. When both sides changed, changes to different tiles (or different columns of one tile) combine into a merge commit; the same cell changed differently on both sides is a conflict: the database is left untouched and \`tilesync merge --ours|--theirs\` (optionally --tile X,Y) or \`tilesync merge --abort\` decides.`

  static override examples = ['<%= config.bin %> pull', '<%= config.bin %> pull origin main', '<%= config.bin %> pull --dry-run', '<%= config.bin %> pull --release', '<%= config.bin %> pull production --release --manifest city/tilesync.release.json']
  static override args = {
    remote: Args.string({description: 'remote name (default origin)'}),
    branch: Args.string({description: 'branch (default the current one)'}),
  }

  static override flags = {
    'dry-run': Flags.boolean({description: 'say what would be fetched and list the tiles that would change (commits and trees read from the remote, nothing stored)'}),
    release: Flags.boolean({description: 'move to exactly the commit the release manifest pins (tilesync.release.json at git HEAD), fast-forward only'}),
    manifest: Flags.string({description: 'with --release: read this manifest file instead', dependsOn: ['release']}),
  }

  async run(): Promise<PullResult> {
    const {args, flags} = await this.parse(Pull)
    if (flags.release && args.branch) this.error('--release pulls the branch the manifest names: give no BRANCH', {exit: 2})
    const r = flags.release
      ? await pullRelease(await this.workspace(), {remote: args.remote, manifest: flags.manifest, dryRun: flags['dry-run']})
      : await pull(await this.workspace(), {remote: args.remote, branch: args.branch, dryRun: flags['dry-run']})
    if (flags.release) this.say(`Release "${(r as Awaited<ReturnType<typeof pullRelease>>).release.name}": commit ${short(r.fetch.branches[0]?.to)}.`)
    if (r.dryRun) {
      this.say(`Would fetch ${r.objects} objects (${formatBytes(r.bytes)}) from ${r.remote}/${r.branch}; nothing was downloaded or changed.`)
      const p = r.preview
      if (!p) this.say('The tiles that would change are known once the objects are here (`tilesync fetch`).')
      else if (p.from === p.to) this.say('Already up to date: no tile would change.')
      else {
        const s = p.changes.summary
        const counts = `${s.tilesAdded} added, ${s.tilesModified} modified, ${s.tilesDeleted} deleted tiles, ${s.rowsChanged} rows`
        this.say(p.fastForward
          ? `Would fast-forward ${short(p.from)} -> ${short(p.to)}: ${counts}:`
          : `Would merge ${r.remote}/${r.branch} into the current branch; its changes since the common ancestor ${short(p.from)}: ${counts}:`)
        for (const line of formatChangeSet(p.changes, {limit: 50})) this.say(`  ${line}`)
      }
      return r
    }
    this.say(`Fetched ${r.objects} objects (${formatBytes(r.bytes)}) from ${r.remote}/${r.branch}.`)
    const m = r.merge!
    if (m.outcome === 'up-to-date') this.say('Already up to date.')
    else if (m.outcome === 'fast-forward') this.say(`Fast-forward to ${short(m.head)}: ${m.rowsWritten} rows written.`)
    else if (m.outcome === 'merged') this.say(`Merged ${r.remote}/${r.branch} as ${short(m.head)}: ${m.rowsWritten} rows written.`)
    else {
      this.say(`Conflicts in ${m.conflicts.length} place(s); the database was not changed:`)
      for (const c of m.conflicts) this.say(`  ${c.table} ${c.key}${c.columns.length ? `: ${c.columns.join(', ')}` : ''} (${c.kind})`)
      this.say('Resolve with `tilesync merge --theirs` / `--ours` (optionally --tile X,Y), or `tilesync merge --abort`.')
      process.exitCode = 1
    }
    return r
  }
}
