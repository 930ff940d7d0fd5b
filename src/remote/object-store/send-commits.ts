import * as path from 'node:path'

import {commitsNotIn, isAncestor} from '../../history/graph.js'
import type {TreeReader} from '../../snapshot/tree-reader.js'
import type {PushOutcome, PushRequest} from '../transport.js'
import {type ObjectPlan, planCommits, planCount, planGroups} from './object-plan.js'
import {uploadPacks} from './pack-upload.js'
import {PushJournal} from './push-journal.js'
import type {RemoteStore} from './remote-store.js'
import {forgetIfPruned, readRemoteShallow, updateRemoteShallow} from './shallow-remote.js'
import {type ObjectSource, transferConcurrency} from './transfer.js'
import {upgradeLooseLayout} from './upgrade-layout.js'

/** The history being sent and where its objects come from: the local store, or another remote. */
export interface HistorySource extends ObjectSource {
  /** Reads commits and trees for planning (verified). */
  reader: TreeReader
  /** Commits whose parents were cut off at the source (a pruned history): shallow roots on the target too. */
  shallow: ReadonlySet<string>
  /** An object's size, for the counts of a dry run. */
  size(id: string): Promise<number>
  /** The size of an object already read (for server-side copies, whose bytes never pass here). */
  knownSize?(id: string): number | undefined
  /** What to record on a target that has no tilesync.json yet. */
  meta(branch: string): Promise<Record<string, unknown> | null>
  /** Before anything is written: checks that the source holds every blob of `blobs`. */
  assertComplete?(commit: string, blobs: string[], plan: ObjectPlan): Promise<void>
  /** Refuse to move a branch that is not an ancestor of the tip (promotion never overwrites, unless the request says force: a release rollback). */
  fastForwardOnly?: boolean
  /** The stored bytes of an object when the source holds it (unverified), else null: the layout upgrade reads what it can here. */
  tryGet?(id: string): Promise<Buffer | null>
  /** The remote the objects come from (promotion): its packs are copied whole where the storage can. */
  fromRemote?: RemoteStore
}

/**
 * What push and promotion have in common on an object store: plan the objects the target
 * lacks from its branch's history (no per-object queries), skip what an interrupted run
 * already sent, upload them children first, record the meta file and shallow roots, and move
 * the branch last with compare-and-swap. `journalDir` holds what was sent, between runs.
 */
export async function sendCommits(source: HistorySource, target: RemoteStore, request: PushRequest, journalDir: string): Promise<PushOutcome> {
  const {branch, tip, have, expected} = request
  if (source.fastForwardOnly && !request.force && expected?.commit && !(await isAncestor(source.reader, expected.commit, tip))) return {status: 'moved', tip: expected.commit}
  // A pruned target lacks what lies below its shallow roots: that counts as not there.
  const commits = await commitsNotIn(source.reader, tip, have, have.length ? await readRemoteShallow(target) : undefined)
  const plan = await planCommits(source.reader, commits)
  const journal = await PushJournal.open(journalDir)
  if (!request.dryRun) await forgetIfPruned(journal, target)
  const pending = planGroups(plan).map((group) => group.filter((id) => !journal.has(id)))
  const skipped = planCount(plan) - pending.reduce((n, g) => n + g.length, 0)
  await source.assertComplete?.(tip, pending[0], plan)
  if (request.dryRun) {
    // The counts the real run would report: objects not yet sent by an interrupted run, and their bytes.
    let bytes = 0
    for (const id of pending.flat()) bytes += plan.blobs.get(id) ?? (await source.size(id))
    return {status: 'dry-run', commits: commits.length, objects: pending.flat().length, bytes, skipped}
  }
  const cut = plan.commits.filter((c) => source.shallow.has(c))
  if (cut.length) await updateRemoteShallow(target, (current) => new Set([...current, ...cut]))
  const cacheDir = path.join(journalDir, 'packs')
  const stats = await uploadPacks(source, target, plan, journal, {
    concurrency: transferConcurrency(), progress: request.progress, verb: request.verb ?? 'push',
    sizeOf: (id) => plan.blobs.get(id) ?? source.knownSize?.(id) ?? 0, unchanged: `${target.name}/${branch}`,
    cacheDir, from: source.fromRemote,
  })
  const existing = await target.readMeta()
  if (!existing) {
    const meta = await source.meta(branch)
    if (meta) await target.writeMeta({...meta, layout: 'packs'})
  }
  if (!(await target.casBranch(branch, expected?.version ?? null, tip))) {
    // Someone moved the branch meanwhile; the same commit landing first is no conflict.
    const now = await target.readBranch(branch)
    if (now?.id !== tip) return {status: 'moved', tip: now?.id ?? null}
  }
  await journal.clear()
  await (await target.packIndex(cacheDir)).saveCache()
  // A remote written before packs existed: its loose objects go into packs now that the push
  // has landed. The push succeeded whatever happens here: a failed upgrade (it only adds packs,
  // then removes loose keys they hold) is simply done again by the next push.
  if (existing && existing.layout !== 'packs') await upgradeLooseLayout(target, source, existing).catch(() => undefined)
  await request.moved?.(tip)
  return {status: 'landed', commits: commits.length, objects: stats.objects, bytes: stats.bytes, skipped: stats.skipped, serverSide: stats.objects > 0 && stats.serverSide === stats.objects}
}
