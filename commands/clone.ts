import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {formatBytes, short} from '../src/cli/format.js'
import {clone, type CloneResult} from '../src/ops/clone.js'
import {parseBBox} from '../src/ops/diff.js'
import {cloneRelease} from '../src/release/consume.js'

export default class Clone extends TilesyncCommand {
  static override summary = 'Copy a remote into a new directory and rebuild the database from it (with --bbox: only a region\'s images).'
  static override description = `With --bbox x0,y0,x1,y1 the clone is partial: every commit and tree arrives (log, diff, status, commit and push work as usual), but of the images only those of the tip's tiles inside the box, and the database holds only those tiles. The filter is recorded in .tilesync/partial.json. A command that needs an image it does not have (show, export, checkout or diff --html outside the region) reads it from origin, verified by its hash. Tiles outside the region cannot be deleted from a partial clone; fsck counts the images left on origin instead of calling them missing. Needs a directory, S3 or R2 remote.`
  static override examples = [
    '<%= config.bin %> clone /mnt/nas/tiles my-tiles',
    '<%= config.bin %> clone r2://my-bucket/city-tiles --db generations/v01/quadrants.db',
    '<%= config.bin %> clone s3://tiles/prod --endpoint http://127.0.0.1:9000',
    '<%= config.bin %> clone --release tilesync.release.json r2://city-tiles/prod ../city',
    '<%= config.bin %> clone r2://my-bucket/city-tiles batch-1 --bbox 0,0,15,15',
    '<%= config.bin %> clone r2://my-bucket/city-tiles batch-1 --bbox 0,0,15,15 --dry-run',
  ]

  static override args = {
    url: Args.string({description: 'remote URL or directory (with --release: default the staging location the manifest records)'}),
    dir: Args.string({description: 'directory to create (default from the URL)'}),
  }

  static override flags = {
    db: Flags.string({description: 'where to write the database, inside DIR (default: as pushed)'}),
    branch: Flags.string({char: 'b', description: 'branch to check out (default main)'}),
    endpoint: Flags.string({description: 'S3-compatible endpoint URL'}),
    region: Flags.string({description: 'S3 region'}),
    host: Flags.string({description: 'oxen server host'}),
    'dry-run': Flags.boolean({description: 'show what would be downloaded'}),
    'no-hardlinks': Flags.boolean({description: 'from a directory remote on this filesystem, copy objects instead of hard-linking them (links are the default, as in git)'}),
    bbox: Flags.string({description: 'partial clone: the whole history, but only the images of tiles inside x0,y0,x1,y1 (the database holds those tiles); the rest is fetched from origin when a command needs it', exclusive: ['release']}),
    release: Flags.string({description: 'clone exactly the commit a release manifest (tilesync.release.json) pins, checked against it', exclusive: ['branch']}),
  }

  async run(): Promise<CloneResult> {
    const {args, flags} = await this.parse(Clone)
    const extra = Object.fromEntries(Object.entries({endpoint: flags.endpoint, region: flags.region, host: flags.host}).filter(([, v]) => v))
    if (!args.url && !flags.release) this.error('give the URL or directory to clone (or --release MANIFEST)', {exit: 2})
    const r = flags.release
      ? await cloneRelease({manifest: flags.release, url: args.url, dir: args.dir, db: flags.db, dryRun: flags['dry-run'], remote: extra})
      : await clone({url: args.url!, dir: args.dir, db: flags.db, branch: flags.branch, dryRun: flags['dry-run'], noHardLinks: flags['no-hardlinks'], remote: extra, bbox: flags.bbox ? parseBBox(flags.bbox) : undefined})
    if (flags.release) this.say(`Release "${(r as Awaited<ReturnType<typeof cloneRelease>>).release.name}": commit ${short(r.head)} (checked against ${flags.release}).`)
    if (r.dryRun) this.say(`Would download ${r.commits} commit(s), ${r.objects} objects, about ${formatBytes(r.bytes)} into ${r.root}.`)
    else this.say(`Cloned into ${r.root}: ${r.commits} commit(s), ${r.objects} objects (${formatBytes(r.bytes)}), ${r.rows} rows written to ${r.database}; on ${r.branch} at ${short(r.head)}.`)
    if (r.partial && r.dryRun) this.say(`Partial clone of tiles ${r.partial.bbox.join(',')}: ${r.partial.imagesInside} images inside the region would be downloaded, ${r.partial.imagesOutside} outside it left on origin.`)
    else if (r.partial) this.say(`Partial clone of tiles ${r.partial.bbox.join(',')}: ${r.partial.imagesInside} images downloaded, ${r.partial.imagesOutside} outside the region left on origin (fetched when a command needs them).`)
    return r
  }
}
