import {existsSync} from 'node:fs'

import {TilesyncError} from '../core/errors.js'
import {applyToDatabase} from '../db/apply-snapshot.js'
import {firstUnexpectedRow} from '../db/verify-rows.js'
import {maxSeq, readTrackingState} from '../db/change-tracking.js'
import {inTransaction} from '../db/transactions.js'
import {type ChangeSet, computeChangeSet, rawChanges, sameContent} from '../snapshot/change-set.js'
import {TreeReader} from '../snapshot/tree-reader.js'
import {OverlayStore} from '../store/overlay-store.js'
import {saveWorking} from '../workspace/save-working.js'
import {markBaseline, type Workspace} from '../workspace/workspace.js'
import {changesInRegion, partialTables} from '../workspace/outside-region.js'
import {sameTables, type TreeState} from '../snapshot/tree-state.js'
import {layerFolders, LIMITS, MANIFEST_PATH} from './layout.js'
import {parseManifest} from './manifest.js'
import {Md5Cache} from './md5-cache.js'
import {restoreDataset} from './restore.js'
import {copyBesideDatabase, type PipelineImport, pipelineTarget, readPipelineFiles} from './import-pipeline.js'
import {isPipelineLayout} from './pipeline-layout.js'
import {DirectorySource} from './source.js'

export interface ImportOptions {
  dir: string
  /** Overwrite uncommitted changes (they are saved first as a commit on refs/saved). */
  force?: boolean
  /**
   * A folder without tilesync/ is imported additively (tiles it lacks are kept, empty image
   * cells leave images alone). `delete` makes its generations.csv the whole truth: tiles it
   * does not list are deleted, empty cells clear images. A folder with tilesync/ always is.
   */
  delete?: boolean
  /** Read and check everything, count what would change, write nothing. */
  dryRun?: boolean
}

export interface ImportResult {
  dir: string
  /**
   * exact: rebuilt from tilesync/ and verified; edited: generations.csv was changed with other
   * tools; pipeline: the generation pipeline's own export (generations/ + generations.csv).
   */
  mode: 'exact' | 'edited' | 'pipeline'
  snapshot: string
  /** The commit the dataset was exported from (exact mode). */
  commit: string | null
  tiles: number
  rowsWritten: number
  rowsDeleted: number
  /** True when the database already equalled the dataset. */
  unchanged: boolean
  /** Commit holding the uncommitted changes that --force overwrote, if any. */
  savedAs: string | null
  /** In pipeline mode: tiles updated and added, metadata and files beside the database. */
  pipeline?: PipelineImport
  /** True when tiles the folder does not list were kept (no tilesync/, no --delete): nothing was deleted for being absent. */
  additive: boolean
  /** Dotfiles and dot-folders skipped (e.g. .DS_Store). */
  ignored: string[]
  /** Tiles added, modified and deleted (what `status` will show). */
  summary: {tilesAdded: number; tilesModified: number; tilesDeleted: number}
  /** With dryRun: nothing was written; the counts are what the import would do. */
  dryRun: boolean
  /** With dryRun: the uncommitted changes that --force would save first. */
  wouldSave?: boolean
}

/**
 * Makes the working database equal to a dataset folder (the offline twin of `pull` from an
 * oxen remote). The folder is checked completely before the database is opened for writing:
 * no symbolic links, no unknown files, no path leaving the folder, every hash right, sizes
 * sane. Then the differences are written in one transaction, refusing over uncommitted
 * changes unless forced, as checkout does. HEAD does not move: the user commits the result.
 */
export async function importDataset(ws: Workspace, options: ImportOptions): Promise<ImportResult> {
  const src = await DirectorySource.open(options.dir)
  // A dry run builds everything in memory: objects go to an overlay, nothing reaches the store.
  if (options.dryRun) ws = scratchWorkspace(ws)
  if (isPipelineLayout(src.files)) return importPipelineExport(ws, src, options)
  const {state: headState} = await ws.headState()
  let layerColumns: string[]
  if (src.files.has(MANIFEST_PATH)) {
    layerColumns = parseManifest(await src.read(MANIFEST_PATH, LIMITS.manifestBytes)).tileTable.layers.map((l) => l.column)
  } else {
    const tile = headState.tables.get(headState.snapshot.tileTable ?? '')
    layerColumns = tile ? tile.layers.map((i) => tile.columns[i].name) : ['render', 'generation']
  }
  src.checkKnownFiles(new Set(layerFolders(layerColumns).map((l) => l.folder)))

  const md5 = await Md5Cache.open(ws.repo)
  const restored = await restoreDataset(src, {
    reader: ws.reader, store: ws.repo.store, md5, base: headState.snapshotId ? headState : null, baseXY: ws.repo.config.xyColumns, deleteMissing: options.delete,
  })
  if (!restored) throw new TilesyncError('BAD_DATASET', `${options.dir} holds no generations.csv and no ${MANIFEST_PATH}`, {hint: 'give a folder `tilesync export` wrote'})
  const target = restored.state
  if (target.snapshot.tileTable !== ws.repo.config.tileTable) {
    throw new TilesyncError('BAD_DATASET', `the dataset's tile table is "${target.snapshot.tileTable}", this repository versions "${ws.repo.config.tileTable}"`, {
      hint: 'import into a repository of the same database, or clone it afresh',
    })
  }
  // Built on HEAD: the import refuses over uncommitted changes (or, forced, overwrites them
  // with HEAD's rows once saved), so HEAD is what the database holds when it writes.
  const result = await writeTarget(ws, async () => target, options)
  return {dir: src.root, mode: restored.mode, commit: restored.commit?.id ?? null, tiles: restored.tiles, additive: restored.additive, ignored: src.ignored, ...result}
}

/**
 * The workspace with an in-memory overlay in front of its object store: what a dry run
 * builds (verified images, rebuilt trees) is readable by every step and stored nowhere.
 */
function scratchWorkspace(ws: Workspace): Workspace {
  const overlay = new OverlayStore(ws.repo.store)
  const repo = Object.create(ws.repo, {store: {value: overlay}}) as Workspace['repo']
  return Object.create(ws, {repo: {value: repo}, reader: {value: new TreeReader(overlay, undefined, ws.repo.shallow)}}) as Workspace
}

/**
 * The pipeline's own export: every file checked and every image verified first, then the
 * listed tiles' generation images written into the database (additively) in one transaction,
 * then its JSON files copied beside the database.
 */
async function importPipelineExport(ws: Workspace, src: DirectorySource, options: ImportOptions): Promise<ImportResult> {
  if (options.delete) {
    throw new TilesyncError('BAD_ARGUMENT', `${src.label} is the pipeline's own export, which lists only generated tiles: --delete would delete every other tile`, {hint: 'import it without --delete (it is additive); delete tiles with your pipeline and commit'})
  }
  const files = await readPipelineFiles(src, ws.repo.store, await Md5Cache.open(ws.repo))
  let stats: Omit<PipelineImport, 'copied'> | undefined
  const result = await writeTarget(ws, async (base) => {
    const built = await pipelineTarget(ws, base, files, src.label)
    stats = built.stats
    return built.state
  }, options)
  const copied = options.dryRun ? [] : await copyBesideDatabase(ws, files)
  return {dir: src.root, mode: 'pipeline', commit: null, tiles: files.records.length, additive: true, ignored: src.ignored, ...result, pipeline: {...stats!, copied}}
}

/**
 * Writes the target into the database in one transaction after the dirty check. `build`
 * gets what the target is made from: the database's own state, or HEAD's when --force
 * overwrites uncommitted changes.
 */
type Written = Pick<ImportResult, 'snapshot' | 'rowsWritten' | 'rowsDeleted' | 'unchanged' | 'savedAs' | 'summary' | 'dryRun' | 'wouldSave'>

export async function writeTarget(ws: Workspace, build: (base: TreeState) => Promise<TreeState>, options: Pick<ImportOptions, 'force' | 'dryRun'>): Promise<Written> {
  if (options.dryRun) return previewTarget(ws, build, options.force ?? false)
  const force = options.force ?? false
  return ws.repo.withLock('import', async () => {
    if (existsSync(ws.repo.layout.mergeState)) {
      throw new TilesyncError('MERGE_IN_PROGRESS', 'a merge is in progress', {hint: 'finish it with `tilesync merge --ours|--theirs` or run `tilesync merge --abort`'})
    }
    const {id: headId, state: headState} = await ws.headState()
    const db = ws.openDb(false)
    try {
      await ws.ensureTracking(db)
      // Scan, check and write in ONE write transaction, as checkout does.
      return await inTransaction(db, 'write', async () => {
        let working = await ws.scan(db, {store: true})
        // Rows the change record did not see (blob I/O) make it read everything, as checkout
        // does: the rows the import would write are compared first.
        let built: TreeState | undefined
        if (working.tracking.used) {
          built = await build(working.state)
          if (await firstUnexpectedRow(db, await rawChanges(working.state, built, ws.reader), ws.reader.objects) !== null) {
            working = await ws.scan(db, {store: true, rescan: true})
            built = undefined
          }
        }
        if (working.tracking.installed && !working.tracking.used) markBaseline(db, working.state.snapshotId, working.tracking.upTo)
        let savedAs: string | null = null
        if (headId !== null && !(await sameContent(headState, working.state, ws.reader))) {
          if (!force) {
            throw new TilesyncError('DIRTY', 'the database has uncommitted changes', {
              hint: 'commit them first (`tilesync commit -m ...`), or pass --force to overwrite them (they are saved first)',
            })
          }
          savedAs = await saveWorking(ws, working.state, headId)
        }
        const target = built && !savedAs ? built : await build(savedAs ? headState : working.state)
        const all = await rawChanges(working.state, target, ws.reader)
        const changes = changesInRegion(all, target.snapshot.tileTable, ws.repo.partial)
        // A partial clone's database holds only its region: tiles outside it cannot be written
        // here, and the change record would then take them for written. Refused, not dropped.
        const count = (c: typeof all): number => [...c.values()].reduce((n, e) => n + e.changes.length, 0)
        if (count(changes) !== count(all)) {
          throw new TilesyncError('BAD_ARGUMENT', `the dataset changes ${count(all) - count(changes)} rows outside this partial clone's region (${ws.repo.partial!.bbox.join(',')})`, {
            hint: 'import it in a full clone, or export only the region (`tilesync export --bbox`) and import that',
          })
        }
        const unchanged = sameTables(working.state, target)
        const summary = tileSummary(await computeChangeSet(working.state, target, ws.reader))
        const applied = await applyToDatabase(db, {changes, targetSchema: target.snapshot.schema, targetTables: target.tables, targetHeader: target.snapshot.header, ignore: ws.ignoreRules(), partialTables: partialTables(target.snapshot.tileTable, ws.repo.partial)}, ws.reader)
        markBaseline(db, target.snapshotId, readTrackingState(db).installed ? maxSeq(db) : 0)
        return {snapshot: target.snapshotId, rowsWritten: applied.rowsWritten, rowsDeleted: applied.rowsDeleted, unchanged, savedAs, summary, dryRun: false}
      })
    } finally {
      db.close()
    }
  })
}

const tileSummary = (set: ChangeSet): ImportResult['summary'] => ({tilesAdded: set.summary.tilesAdded, tilesModified: set.summary.tilesModified, tilesDeleted: set.summary.tilesDeleted})

/**
 * import --dry-run: the same checks as the import (a merge in progress, uncommitted changes
 * without --force), and the counts it would report, from a read-only look at the database.
 */
async function previewTarget(ws: Workspace, build: (base: TreeState) => Promise<TreeState>, force: boolean): Promise<Written> {
  if (existsSync(ws.repo.layout.mergeState)) {
    throw new TilesyncError('MERGE_IN_PROGRESS', 'a merge is in progress', {hint: 'finish it with `tilesync merge --ours|--theirs` or run `tilesync merge --abort`'})
  }
  const {id: headId, state: headState} = await ws.headState()
  const db = ws.openDb(true)
  try {
    return await inTransaction(db, 'read', async () => {
      const working = await ws.scan(db, {store: false})
      const dirty = headId !== null && !(await sameContent(headState, working.state, working.reader))
      if (dirty && !force) {
        throw new TilesyncError('DIRTY', 'the database has uncommitted changes', {
          hint: 'commit them first (`tilesync commit -m ...`), or pass --force to overwrite them (they are saved first)',
        })
      }
      const target = await build(dirty ? headState : working.state)
      const changes = await rawChanges(working.state, target, working.reader)
      // Rows the import would insert or update, and delete (ignored tables are written by nothing).
      const counts = {rowsWritten: 0, rowsDeleted: 0}
      for (const [name, t] of changes) {
        if (ws.ignoreRules().tableIgnored(name)) continue
        for (const c of t.changes) {
          if (c.new) counts.rowsWritten++
          else if (c.old) counts.rowsDeleted++
        }
      }
      const summary = tileSummary(await computeChangeSet(working.state, target, working.reader))
      return {snapshot: target.snapshotId, rowsWritten: counts.rowsWritten, rowsDeleted: counts.rowsDeleted, unchanged: sameTables(working.state, target), savedAs: null, summary, dryRun: true, wouldSave: dirty}
    })
  } finally {
    db.close()
  }
}
