import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import {TilesyncError} from '../src/core/errors.js'
import {importDataset, type ImportResult} from '../src/dataset/import-dataset.js'
import {importRemote, isRemoteSource, type RemoteImportResult} from '../src/ops/import-remote.js'

export default class Import extends TilesyncCommand {
  static override summary = 'Make the database equal to a dataset folder written by `tilesync export` (or an oxen clone of one), add the tiles of a folder in the same layout without tilesync/, import the pipeline\'s own export (generations/ + generations.csv), or import an oxen dataset by tile coordinates (oxen://NS/REPO[@BRANCH]).'
  static override description = `The whole folder is checked before the database is written: symbolic links, paths that leave the folder, unknown files, MD5 and BLAKE3 mismatches, malformed CSV and absurd sizes are refused (HOSTILE_PATH / BAD_DATASET) and nothing changes. Dotfiles and dot-folders (.DS_Store, .git/, .oxen/) are skipped. Then the differences are written in one transaction. Refuses over uncommitted changes unless --force (they are saved first, as with checkout). HEAD does not move: commit the result.

A folder with tilesync/ (what \`tilesync export\` writes) is the whole truth: tiles it does not list are deleted. A folder without it is your own format (your pipeline's export, a region exported with \`export --bbox\`) and is imported additively: the tiles it lists get its images (a new tile is created when the table's NOT NULL columns have defaults), an empty image cell leaves the image alone, and no tile is deleted. --delete makes such a folder's generations.csv the whole truth too. --dry-run checks everything and says what would change without writing anything.

A folder written by the generation pipeline's own export script (generations/<x>_<y>_<md5>.png, generations.csv with x,y,quadrant,hash_quadrant, generation_config.json, bounds.json) is imported additively, as the pipeline's import does: each listed tile's generation image is set (a missing tile is created with 0 in its NOT NULL columns), generation_config.json is stored in the metadata table, bounds.json and generation_config.json are copied beside the database, and no other tile or image changes.

From oxen (oxen://NAMESPACE/REPO[@BRANCH], or a configured oxen remote NAME[@BRANCH]): a dataset written with other tools (the earlier export script's renders/ and quadrants/ with generations.csv = render,quadrant,x,y,hash_render,hash_quadrant; the pipeline's export; a tilesync dataset pushed from a repository that shares no history with this one) is imported by tile coordinates. Only images whose MD5 differs from the working database's are downloaded; each is checked against the hash in its name and in the CSV, and nothing is written if one fails. The image columns are set by (x, y), other columns untouched; a tile the database lacks is created only where every other NOT NULL column has a default, otherwise it is listed. --dry-run says what would change after reading generations.csv only.`

  static override examples = [
    '<%= config.bin %> import ../city-dataset',
    '<%= config.bin %> import ../city-dataset --force',
    '<%= config.bin %> import oxen/datasets/isometric-nyc-tiles',
    '<%= config.bin %> import oxen://andycoenen/isometric-nyc-tiles',
    '<%= config.bin %> import oxen://andycoenen/isometric-nyc-tiles@night --dry-run',
    '<%= config.bin %> import hub --json',
    '<%= config.bin %> import ../batch-2025-11-04 --dry-run',
    '<%= config.bin %> import ../my-export --delete',
  ]

  static override args = {dir: Args.string({required: true, description: 'dataset folder, oxen://NAMESPACE/REPO[@BRANCH], or a configured oxen remote [@BRANCH]'})}
  static override flags = {
    force: Flags.boolean({char: 'f', description: 'overwrite uncommitted changes (they are saved first)'}),
    delete: Flags.boolean({description: 'for a folder without tilesync/: delete the tiles its generations.csv does not list, clear images its empty cells name (default: additive, nothing deleted)'}),
    'dry-run': Flags.boolean({description: 'check everything and say what would change; write nothing (from a remote: only generations.csv is downloaded)'}),
    host: Flags.string({description: 'oxen server host, for an oxen:// URL (default hub.oxen.ai)'}),
  }

  async run(): Promise<ImportResult | RemoteImportResult> {
    const {args, flags} = await this.parse(Import)
    const ws = await this.workspace()
    if (isRemoteSource(ws, args.dir)) {
      if (flags.delete) throw new TilesyncError('BAD_ARGUMENT', '--delete is for a dataset folder', {hint: 'an import from a remote sets images by tile coordinates and deletes nothing'})
      return this.fromRemote(ws, args.dir, flags)
    }
    const r = await importDataset(ws, {dir: args.dir, force: flags.force, delete: flags.delete, dryRun: flags['dry-run']})
    if (r.ignored.length) this.say(`Skipped ${r.ignored.length} dotfile(s): ${r.ignored.slice(0, 5).join(', ')}${r.ignored.length > 5 ? ', ...' : ''}.`)
    const tiles = `${r.summary.tilesAdded} tiles added, ${r.summary.tilesModified} modified, ${r.summary.tilesDeleted} deleted`
    if (r.dryRun) {
      const how = r.mode === 'pipeline' ? 'the pipeline\'s export' : r.additive ? 'additively: tiles it does not list are kept' : r.mode === 'exact' ? `commit ${short(r.commit)} (verified)` : 'generations.csv edited outside tilesync'
      if (r.unchanged) this.say(`Dry run: the database already equals ${r.dir} (${how}); nothing would be written.`)
      else this.say(`Dry run: importing ${r.dir} (${how}) would change ${tiles}; ${r.rowsWritten} rows written, ${r.rowsDeleted} deleted. Nothing was written.`)
      if (r.wouldSave) this.say('Your uncommitted changes would be saved first (--force).')
      return r
    }
    if (r.savedAs) this.say(`Saved your uncommitted changes as ${short(r.savedAs)}: get them back with \`tilesync checkout ${short(r.savedAs)}\`.`)
    if (r.pipeline) {
      const p = r.pipeline
      this.say(`Imported the pipeline's export ${r.dir}: ${p.tiles} generated tiles listed; ${p.updated} updated, ${p.added} added, ${p.unchanged} already equal; ${r.rowsWritten} rows written.`)
      if (p.generationConfig) this.say('Stored generation_config.json in the metadata table (key generation_config).')
      for (const f of p.copied) this.say(`Copied ${f.split('/').pop()} to ${f}.`)
      if (!r.unchanged) this.say('Run `tilesync commit -m "..."` to record it.')
      return r
    }
    const from = r.mode === 'exact' ? `commit ${short(r.commit)} (verified)` : r.additive ? 'no tilesync/: added, tiles it does not list kept' : 'generations.csv edited outside tilesync'
    if (r.unchanged) this.say(`The database already equals ${r.dir} (${from}); nothing written.`)
    else this.say(`Imported ${r.dir} (${from}): ${r.tiles} tiles listed; ${tiles}; ${r.rowsWritten} rows written, ${r.rowsDeleted} deleted. Run \`tilesync commit -m "..."\` to record it.`)
    return r
  }

  private async fromRemote(ws: Awaited<ReturnType<Import['workspace']>>, source: string, flags: {force?: boolean; 'dry-run'?: boolean; host?: string}): Promise<RemoteImportResult> {
    const r = await importRemote(ws, {source, force: flags.force, dryRun: flags['dry-run'], remote: {host: flags.host}})
    const what = `${r.remote}@${r.branch} (${r.revision.slice(0, 10)}${r.layout === 'pipeline' ? ', the pipeline\'s export' : ''}${r.sidecar ? ', imported by coordinates, not by history' : ''})`
    if (r.dryRun) {
      this.say(`Would import ${what}: ${r.tiles} tiles listed; ${r.updated} to update, ${r.created} to add if the schema allows, ${r.unchanged} already equal; ${r.files.downloaded} of ${r.files.listed} images to download.`)
      return r
    }
    if (r.savedAs) this.say(`Saved your uncommitted changes as ${short(r.savedAs)}: get them back with \`tilesync checkout ${short(r.savedAs)}\`.`)
    this.say(`Imported ${what}: ${r.tiles} tiles listed; ${r.updated} updated, ${r.created} added, ${r.unchanged} already equal; ${r.files.downloaded} images downloaded (${(r.files.bytes / 1024 / 1024).toFixed(1)} MiB), ${r.rowsWritten} rows written.`)
    if (r.generationConfig) this.say('Stored generation_config.json in the metadata table (key generation_config).')
    for (const f of r.copied ?? []) this.say(`Copied ${f.split('/').pop()} to ${f}.`)
    if (r.notCreated.length > 0) {
      this.say(`${r.notCreated.length} tiles are not in the database and could not be added:`)
      for (const t of r.notCreated.slice(0, 20)) this.say(`  ${t.x},${t.y} (generations.csv line ${t.line}): ${t.reason}`)
      if (r.notCreated.length > 20) this.say(`  ... and ${r.notCreated.length - 20} more (see --json)`)
    }
    if (r.rowsWritten > 0) this.say('Review it with `tilesync status` / `tilesync diff`, then run `tilesync commit -m "..."` to record it.')
    return r
  }
}
