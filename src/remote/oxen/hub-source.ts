import pLimit from 'p-limit'

import {isTilesyncError} from '../../core/errors.js'
import {type DatasetSource, missingFile, tooLarge} from '../../dataset/source.js'
import type {OxenClient} from './oxen-client.js'
import type {OxenCommit, OxenEntry} from './oxen-types.js'

/** One commit of the hub as a dataset source: files are listed lazily and downloaded on demand. */
export class HubSource implements DatasetSource {
  readonly verifyAll = false
  readonly stats = {files: 0, bytes: 0}
  readonly label: string
  private readonly entries = new Map<string, Promise<OxenEntry | null>>()

  constructor(private readonly client: OxenClient, private readonly revision: string) {
    this.label = `${client.location}@${revision.slice(0, 10)}`
  }

  private entry(p: string): Promise<OxenEntry | null> {
    let e = this.entries.get(p)
    if (!e) {
      e = this.client.getEntry(this.revision, p)
      this.entries.set(p, e)
    }
    return e
  }

  async exists(p: string): Promise<boolean> {
    const e = await this.entry(p)
    return e !== null && !e.is_dir
  }

  async quickHash(p: string): Promise<string | null> {
    const e = await this.entry(p)
    return e && !e.is_dir ? e.hash : null
  }

  async read(p: string, maxBytes: number): Promise<Buffer> {
    let bytes: Buffer
    try {
      bytes = await this.client.downloadFile(this.revision, p)
    } catch (err) {
      if (isTilesyncError(err, 'OBJECT_MISSING')) throw missingFile(this.label, p)
      throw err
    }
    if (bytes.length > maxBytes) throw tooLarge(this.label, p, bytes.length, maxBytes)
    this.stats.files++
    this.stats.bytes += bytes.length
    return bytes
  }
}

export interface HubFile {
  hash: string
  size: number
}

/** Every file at `revision` (a commit or a workspace), walking folders level by level. */
export async function listAll(client: OxenClient, revision: string): Promise<Map<string, HubFile>> {
  const out = new Map<string, HubFile>()
  const limit = pLimit(4)
  let level = ['']
  while (level.length > 0) {
    const next: string[] = []
    await Promise.all(level.map((dir) => limit(async () => {
      let entries: OxenEntry[]
      try {
        entries = await client.listDir(revision, dir)
      } catch (err) {
        if (dir === '' && isTilesyncError(err, 'OBJECT_MISSING')) return
        throw err
      }
      for (const e of entries) {
        const p = dir ? `${dir}/${e.filename}` : e.filename
        if (e.is_dir) next.push(p)
        else out.set(p, {hash: e.hash, size: Number(e.size)})
      }
    })))
    level = next
  }
  return out
}

/** Hub commits reachable from `head`, parents before children. */
export function parentsFirst(head: string, commits: OxenCommit[]): OxenCommit[] {
  const byId = new Map(commits.map((c) => [c.id, c]))
  const out: OxenCommit[] = []
  const done = new Set<string>()
  const stack: Array<{id: string; expanded: boolean}> = [{id: head, expanded: false}]
  while (stack.length > 0) {
    const top = stack.pop()!
    const c = byId.get(top.id)
    if (!c || done.has(top.id)) continue
    if (top.expanded) {
      done.add(top.id)
      out.push(c)
      continue
    }
    stack.push({id: top.id, expanded: true})
    for (const p of [...(c.parent_ids ?? [])].reverse()) if (!done.has(p)) stack.push({id: p, expanded: false})
  }
  return out
}
