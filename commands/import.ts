import {Args, Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'
import {short} from '../src/cli/format.js'
import {importDataset, type ImportResult} from '../src/dataset/import-dataset.js'

export default class Import extends TilesyncCommand {
  static override summary = 'Make the database equal to a dataset folder written by `tilesync export` (or an oxen clone of one), add the tiles of a folder in the same layout without tilesync/, or import the pipeline\'s own export (generations/ + generations.csv).'
  static override description = `The whole folder is checked before the database is written: symbolic links, paths that leave the folder, unknown files, MD5 and BLAKE3 mismatches, malformed CSV and absurd sizes are refused (HOSTILE_PATH / BAD_DATASET) and nothing changes. Dotfiles and dot-folders (.DS_Store, .git/, .oxen/) are skipped. Then the differences are written in one transaction. Refuses over uncommitted changes unless --force (they are saved first, as with checkout). HEAD does not move: commit the result.

A folder with tilesync/ (what \`tilesync export\` writes) is the whole truth: tiles it does not list are deleted. A folder without it is your own format (your pipeline's export, a region exported with \`export --bbox\`) and is imported additively: the tiles it lists get its images (a new tile is created when the table's NOT NULL columns have defaults), an empty image cell leaves the image alone, and no tile is deleted. --delete makes such a folder's generations.csv the whole truth too. --dry-run checks everything and says what would change without writing anything.

A folder written by the generation pipeline's own export script (generations/<x>_<y>_<md5>.png, generations.csv with x,y,quadrant,hash_quadrant, generation_config.json, bounds.json) is imported additively, as the pipeline's import does: each listed tile's generation image is set (a missing tile is created with 0 in its NOT NULL columns), generation_config.json is stored in the metadata table, bounds.json and generation_config.json are copied beside the database, and no other tile or image changes.`

  static override examples = [
    '<%= config.bin %> import ../city-dataset',
    '<%= config.bin %> import ../city-dataset --force',
    '<%= config.bin %> import oxen/datasets/isometric-nyc-tiles',
    '<%= config.bin %> import ../batch-2025-11-04 --dry-run',
    '<%= config.bin %> import ../my-export --delete',
  ]

  static override args = {dir: Args.string({required: true, description: 'dataset folder'})}
  static override flags = {
    force: Flags.boolean({char: 'f', description: 'overwrite uncommitted changes (they are saved first)'}),
    delete: Flags.boolean({description: 'for a folder without tilesync/: delete the tiles its generations.csv does not list, clear images its empty cells name (default: additive, nothing deleted)'}),
    'dry-run': Flags.boolean({description: 'check the folder and say what would change; write nothing'}),
  }

  async run(): Promise<ImportResult> {
    const {args, flags} = await this.parse(Import)
    const r = await importDataset(await this.workspace(), {dir: args.dir, force: flags.force, delete: flags.delete, dryRun: flags['dry-run']})
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
}
