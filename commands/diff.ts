import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatBytes, formatChangeSet, formatPerceptual, short} from '../src/cli/format.js'
import {diff, type DiffResult, parseBBox} from '../src/ops/diff.js'
import {NEAR_DISTANCE} from '../src/perceptual/dhash.js'
import type {ReportResult} from '../src/viewer/report.js'

export default class Diff extends TilesyncCommand {
  static override summary = 'Show changed tiles: database vs HEAD, database vs REV, or REV vs REV2.'
  static override description = 'Per tile: which layers changed with old/new object ids and sizes, and which other columns changed. Other tables are listed by row key.'
  static override examples = [
    '<%= config.bin %> diff',
    '<%= config.bin %> diff HEAD~1',
    '<%= config.bin %> diff HEAD~3 HEAD --stat',
    '<%= config.bin %> diff main feature --bbox -10,-10,10,10 --json',
    '<%= config.bin %> diff HEAD~1 HEAD --html report.html',
    '<%= config.bin %> diff HEAD~1 HEAD --perceptual',
    '<%= config.bin %> diff --perceptual --threshold 4 --json',
  ]

  static override args = {
    rev: Args.string({description: 'compare the database (or REV2) against this revision'}),
    rev2: Args.string({description: 'second revision'}),
  }

  static override flags = {
    stat: Flags.boolean({description: 'counts only'}),
    bbox: Flags.string({description: 'only tiles inside x0,y0,x1,y1 (inclusive)'}),
    html: Flags.string({description: 'also write a self-contained HTML report (tile overview, before/after images) to this file'}),
    perceptual: Flags.boolean({description: 'split modified tiles by their images: pixels identical (re-encoded), nearly identical, changed (decodes each changed image once; cached)'}),
    threshold: Flags.integer({description: `with --perceptual: most differing bits (of 128) still "nearly identical" (default ${NEAR_DISTANCE})`, dependsOn: ['perceptual']}),
  }

  async run(): Promise<DiffResult & {report?: ReportResult}> {
    const {args, flags} = await this.parse(Diff)
    const ws = await this.workspace()
    const bbox = flags.bbox ? parseBBox(flags.bbox) : undefined
    const result = await diff(ws, {from: args.rev, to: args.rev2, bbox, perceptual: flags.perceptual ? {threshold: flags.threshold} : undefined})
    this.say(`diff ${short(result.from)} -> ${result.to === 'working' ? 'database' : short(result.to)}`)
    const lines = formatChangeSet(result.changes, {stat: flags.stat})
    if (lines.length === 0) this.say('No changes.')
    for (const line of lines) this.say(line)
    if (result.perceptual) for (const line of formatPerceptual(result.perceptual, {stat: flags.stat})) this.say(line)
    if (flags.html) {
      // Loaded only here: the image library is not needed by a plain diff.
      const {writeDiffReport} = await import('../src/viewer/report.js')
      const report = await writeDiffReport(ws, result, flags.html, {bbox})
      this.say(`Wrote ${report.file} (${formatBytes(report.bytes)}, ${report.tiles} tiles, ${report.changed} changed)`)
      return {...result, report}
    }
    return result
  }
}
