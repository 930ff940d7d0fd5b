import type {Commit} from '../snapshot/model.js'
import type {Workspace} from '../workspace/workspace.js'

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
}

/** History from a revision, newest first (by commit time, as `git log` orders it). */
export async function log(ws: Workspace, options: {revision?: string; limit?: number} = {}): Promise<LogEntry[]> {
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
