import type {SchemaChange} from '../snapshot/versioned-schema.js'
import type {Commit} from '../snapshot/model.js'
import {computeChangeSet, layerPhrase} from '../snapshot/change-set.js'
import type {Workspace} from '../workspace/workspace.js'

/** What `log --stat` adds to a commit: per image layer, how many tiles gained, lost or changed it. */
export interface LogStat {
  layers: Record<string, {added: number; removed: number; modified: number}>
  /** "dark_mode removed from tile 3,4", one per layer change of a tile that stayed (the first 20). */
  events: string[]
  moreEvents: number
  schema: SchemaChange[]
  tileTable: string | null
  layerNames: string[]
}

export interface LogEntry {
  id: string
  parents: string[]
  author: string
  email: string
  date: string
  timestamp: number
  message: string
  tilesChanged: number
  stats: Commit['stats']
  refs: string[]
  /** With `stat`: what the commit changed per layer, against its first parent. */
  stat?: LogStat
}

const EVENT_LIMIT = 20

async function statOf(ws: Workspace, id: string, commit: Commit): Promise<LogStat> {
  const set = await computeChangeSet(await ws.stateOf(commit.parents[0] ?? null), await ws.stateOf(id), ws.reader)
  const stat: LogStat = {layers: {}, events: [], moreEvents: 0, schema: set.schema, tileTable: set.tileTable, layerNames: set.layers}
  for (const t of set.tiles) {
    for (const l of t.layers) {
      const change = t.status === 'added' ? 'added' : t.status === 'deleted' ? 'removed' : l.change
      const counts = stat.layers[l.layer] ??= {added: 0, removed: 0, modified: 0}
      counts[change]++
      if (t.status !== 'modified') continue
      if (stat.events.length < EVENT_LIMIT) stat.events.push(layerPhrase(l, t.key))
      else stat.moreEvents++
    }
  }
  return stat
}

/** History from a revision, newest first (by commit time, as `git log` orders it). */
export async function log(ws: Workspace, options: {revision?: string; limit?: number; stat?: boolean} = {}): Promise<LogEntry[]> {
  const start = options.revision ? await ws.resolve(options.revision) : await ws.repo.refs.headCommit()
  if (!start) return []
  const decorations = await refDecorations(ws)
  const out: LogEntry[] = []
  const seen = new Set<string>()
  let frontier: Array<{id: string; commit: Commit}> = [{id: start, commit: await ws.reader.commit(start)}]
  const limit = options.limit ?? Number.POSITIVE_INFINITY
  while (frontier.length > 0 && out.length < limit) {
    frontier.sort((a, b) => b.commit.timestamp - a.commit.timestamp)
    const {id, commit} = frontier.shift()!
    if (seen.has(id)) continue
    seen.add(id)
    const s = commit.stats
    out.push({
      id, parents: commit.parents, author: commit.author.name, email: commit.author.email,
      date: new Date(commit.timestamp).toISOString(), timestamp: commit.timestamp, message: commit.message,
      tilesChanged: s.tilesAdded + s.tilesModified + s.tilesDeleted, stats: s, refs: decorations.get(id) ?? [],
      ...(options.stat ? {stat: await statOf(ws, id, commit)} : {}),
    })
    for (const p of commit.parents) if (!seen.has(p)) frontier.push({id: p, commit: await ws.reader.commit(p)})
  }
  return out
}

async function refDecorations(ws: Workspace): Promise<Map<string, string[]>> {
  const map = new Map<string, string[]>()
  const add = (id: string, name: string): void => {
    map.set(id, [...(map.get(id) ?? []), name])
  }
  const head = await ws.repo.refs.readHead()
  const headId = await ws.repo.refs.headCommit()
  if (headId) add(headId, head.kind === 'branch' ? `HEAD -> ${head.branch}` : 'HEAD')
  for (const r of await ws.repo.refs.list('refs/heads')) if (!(head.kind === 'branch' && head.ref === r.name)) add(r.id, r.name.slice('refs/heads/'.length))
  for (const r of await ws.repo.refs.list('refs/remotes')) add(r.id, r.name.slice('refs/remotes/'.length))
  for (const r of await ws.repo.refs.list('refs/tags')) add(r.id, `tag: ${r.name.slice('refs/tags/'.length)}`)
  return map
}
