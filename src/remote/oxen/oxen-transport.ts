import {TilesyncError} from '../../core/errors.js'
import {LIMITS, MANIFEST_PATH} from '../../dataset/layout.js'
import {parseManifest} from '../../dataset/manifest.js'
import {Md5Cache} from '../../dataset/md5-cache.js'
import type {RemoteConfig} from '../../repo/config.js'
import type {Workspace} from '../../workspace/workspace.js'
import type {OpenContext, RemoteLocation} from '../remote-kind.js'
import type {FetchedTip, FetchOptions, PushOutcome, PushRequest, RemoteBranch, RemoteMeta, Transport} from '../transport.js'
import {type FetchContext, importHubHistory} from './hub-import.js'
import {HubSource} from './hub-source.js'
import {readOxenIdentity} from './oxen-auth.js'
import {OxenClient, type OxenClientOptions} from './oxen-client.js'
import {pushToHub, recognise} from './oxen-push.js'
import {loadOxenState, type OxenSyncState, saveOxenState} from './oxen-state.js'

/** Knobs for tests and tuning: anything OxenClient takes except the repository. */
export type OxenTuning = Partial<Omit<OxenClientOptions, 'namespace' | 'repo'>> & {env?: Record<string, string | undefined>}

export async function openTransport(loc: RemoteLocation, config: RemoteConfig, context: OpenContext): Promise<Transport> {
  if (loc.form !== 'repository') throw new TilesyncError('REMOTE_UNSUPPORTED', `${config.url} is not an oxen remote`)
  const tuning = (context.tuning ?? {}) as OxenTuning
  const client = await OxenClient.open({namespace: loc.namespace, repo: loc.repo, ...tuning, host: tuning.host ?? config.host})
  return new OxenTransport(client, context.name, `${loc.namespace}/${loc.repo}`, tuning.env)
}

/**
 * An oxen.ai repository as a remote: tilesync history published as a dataset people can
 * browse, one oxen commit per tilesync commit (push: oxen-push.ts), and hub commits rebuilt
 * as tilesync commits on fetch (hub-import.ts). Which hub commit holds which tilesync commit
 * is kept in `.tilesync/remotes/NAME/oxen.json`; the hub commit id is a branch's version tag.
 */
export class OxenTransport implements Transport {
  readonly kind = 'oxen'
  readonly fetchesCommits = false
  private readonly states = new Map<string, Promise<OxenSyncState>>()
  /** Each branch's hub head as last read, so a push works from what its checks saw. */
  private readonly heads = new Map<string, string | null>()
  private repoChecked = false

  constructor(readonly client: OxenClient, private readonly name: string, private readonly title: string, private readonly env?: Record<string, string | undefined>) {}

  get location(): string {
    return this.client.location
  }

  private state(ws: Workspace): Promise<OxenSyncState> {
    let s = this.states.get(ws.repo.root)
    if (!s) {
      s = loadOxenState(ws.repo, this.name, this.client.location)
      this.states.set(ws.repo.root, s)
    }
    return s
  }

  /** REMOTE_UNKNOWN ("no such repository") before anything else is asked. */
  private async checkRepo(): Promise<void> {
    if (this.repoChecked) return
    await this.client.getRepo()
    this.repoChecked = true
  }

  async listBranches(local?: Workspace): Promise<RemoteBranch[]> {
    await this.checkRepo()
    const state = local ? await this.state(local) : null
    return (await this.client.listBranches()).map((b) => ({name: b.name, commit: state?.commits[b.commit_id] || null, version: b.commit_id}))
  }

  /**
   * The branch's tilesync commit, recognised from the local record or the hub itself. null
   * when the hub has no such branch or it holds no tile data (a push starts it); `commit:
   * null` when its head is someone else's work this repository has not fetched.
   */
  async readBranch(name: string, local?: Workspace): Promise<RemoteBranch | null> {
    const head = (await this.client.findRepo()) ? (await this.client.getBranch(name))?.commit_id ?? null : null
    this.heads.set(name, head)
    if (!head) return null
    if (!local) return {name, commit: null, version: head}
    const state = await this.state(local)
    if (!(head in state.commits) && (await recognise(this.client, state, name, head)) === 'unknown') return {name, commit: null, version: head}
    const commit = state.commits[head]
    return commit ? {name, commit, version: head} : null
  }

  /** The configuration the tilesync manifest at the branch's head records. */
  async readMeta(branch?: RemoteBranch): Promise<RemoteMeta | null> {
    if (!branch) return null
    const head = new HubSource(this.client, branch.version)
    if (!(await head.exists(MANIFEST_PATH))) return null
    const manifest = parseManifest(await head.read(MANIFEST_PATH, LIMITS.manifestBytes))
    const c = manifest.config
    return {database: c.database, tileTable: manifest.tileTable.name, keyColumns: c.keyColumns, imageColumns: c.imageColumns, xyColumns: c.xyColumns}
  }

  async fetch(local: Workspace, tips: Array<RemoteBranch | string>, options: FetchOptions = {}): Promise<FetchedTip[]> {
    await this.checkRepo()
    const dryRun = Boolean(options.dryRun)
    const state = await this.state(local)
    const ctx: FetchContext = {md5: await Md5Cache.open(local.repo, {writeBack: !dryRun}), partCache: new Map(), files: 0, bytes: 0}
    const out: FetchedTip[] = []
    try {
      for (const tip of tips) {
        if (typeof tip === 'string') throw new TilesyncError('REMOTE_UNSUPPORTED', `fetching a pinned commit (${tip.slice(0, 10)}) is not supported from oxen remotes`, {hint: 'fetch a branch'})
        const [files0, bytes0] = [ctx.files, ctx.bytes]
        const commits = await importHubHistory(local, this.client, state, tip.version, ctx, dryRun)
        const commit = state.commits[tip.version] || null
        if (dryRun) {
          out.push({commit, commits, objects: 0, bytes: 0})
          continue
        }
        state.branches[tip.name] = {oxen: tip.version, tilesync: commit ?? ''}
        await saveOxenState(local.repo, this.name, state)
        out.push({commit, commits, objects: ctx.files - files0, bytes: ctx.bytes - bytes0, note: `hub ${tip.version.slice(0, 10)}`})
      }
    } finally {
      // Commits rebuilt before a failure stay known, so the next fetch does not redo them.
      if (!dryRun) await saveOxenState(local.repo, this.name, state)
    }
    // The dataset is rebuilt commit by commit: work meant to overlap the download runs after it.
    const tip = out.length === 1 ? out[0].commit : null
    if (options.alongside && tip && !dryRun) await options.alongside(local.reader, tip)
    return out
  }

  async push(local: Workspace, request: PushRequest): Promise<PushOutcome> {
    // One push at a time per repository: the record of what is on the hub is read and rewritten.
    return local.repo.withLock('push', async () => {
      const state = await this.state(local)
      if (!request.dryRun && !(await this.client.findRepo())) {
        await this.client.createRepo({description: `Map tiles published by tilesync (${this.title.split('/')[1]})`})
      }
      const hubHead = this.heads.has(request.branch) ? this.heads.get(request.branch)! : (await this.client.getBranch(request.branch).catch(() => null))?.commit_id ?? null
      const identity = await readOxenIdentity(this.env).catch(() => null)
      return pushToHub({ws: local, client: this.client, state, name: this.name, title: this.title, hubHead, identity}, request)
    })
  }

  /** Removes the hub branch if it is still at `expected` (read, then delete: the hub has no conditional delete). */
  async deleteBranch(name: string, expected: RemoteBranch): Promise<boolean> {
    const now = await this.client.getBranch(name)
    if (now?.commit_id !== expected.version) return false
    await this.client.deleteBranch(name)
    this.heads.delete(name)
    return true
  }

  /** A branch's head commit as a dataset (files listed lazily, downloaded on demand). */
  async openDataset(branch?: string): Promise<{source: HubSource; branch: string; revision: string}> {
    await this.checkRepo()
    let name = branch
    if (!name) {
      const all = await this.client.listBranches()
      name = all.find((b) => b.name === 'main')?.name ?? all[0]?.name
      if (!name) throw new TilesyncError('REMOTE_EMPTY', `${this.client.location} has no branches yet`, {hint: 'nothing to import'})
    }
    const head = await this.client.getBranch(name)
    if (!head) throw new TilesyncError('REF_MISSING', `${this.client.location} has no branch ${name}`, {hint: 'list its branches with `oxen branch --remote`, or name one as oxen://NS/REPO@BRANCH'})
    return {source: new HubSource(this.client, head.commit_id), branch: name, revision: head.commit_id}
  }

  async close(): Promise<void> {}
}
