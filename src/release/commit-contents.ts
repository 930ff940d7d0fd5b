import pLimit from 'p-limit'

import {TilesyncError} from '../core/errors.js'
import type {RemoteObjects} from '../remote/transport.js'
import type {BlobRef} from '../snapshot/model.js'
import {TreeReader} from '../snapshot/tree-reader.js'
import type {ObjectReader} from '../store/object-store.js'

/** Everything one commit's snapshot refers to (not its history). */
export interface CommitContents {
  commit: string
  message: string
  tileTable: string | null
  tiles: number
  rows: number
  /** Commit, snapshot, table and node ids. */
  structure: string[]
  /** Blob id -> size as recorded in the trees. */
  blobs: Map<string, number>
  bytes: number
}

/**
 * Reads a commit's whole snapshot: tables, nodes (a level at a time, many requests at once)
 * and the blob references in the leaves. Through a RemoteReader every object read is
 * verified by hash, so this also proves the structure is complete and intact there.
 */
export async function readCommitContents(reader: TreeReader, commitId: string): Promise<CommitContents> {
  const limit = pLimit(concurrency())
  const commit = await reader.commit(commitId)
  const snapshot = await reader.snapshot(commit.tree)
  const structure = [commitId, commit.tree]
  const blobs = new Map<string, number>()
  let rows = 0
  let tiles = 0
  const tables = await Promise.all(snapshot.tables.map((t) => limit(() => reader.table(t.id))))
  let level: string[] = []
  for (const [i, t] of tables.entries()) {
    structure.push(snapshot.tables[i].id)
    rows += t.rowCount
    if (t.name === snapshot.tileTable) tiles = t.rowCount
    if (t.root) level.push(t.root)
  }
  const seen = new Set<string>()
  while (level.length > 0) {
    const todo = level.filter((id) => !seen.has(id) && (seen.add(id), true))
    for (const id of todo) structure.push(id)
    const nodes = await Promise.all(todo.map((id) => limit(() => reader.node(id))))
    level = []
    for (const node of nodes) {
      if (node.level !== 0) {
        for (const e of node.entries) level.push(e.id)
        continue
      }
      for (const row of node.rows) {
        for (let i = 0; i < row.types.length; i++) {
          if (row.types[i] === 'b') blobs.set((row.values[i] as BlobRef).id, (row.values[i] as BlobRef).size)
        }
      }
    }
  }
  let bytes = 0
  for (const size of blobs.values()) bytes += size
  return {commit: commitId, message: commit.message, tileTable: snapshot.tileTable, tiles, rows, structure, blobs, bytes}
}

/** Requests at once while reading a snapshot from a remote: TILESYNC_JOBS, else 16. */
function concurrency(): number {
  const v = Number(process.env.TILESYNC_JOBS)
  return Number.isInteger(v) && v > 0 ? v : 16
}

/** Reads objects straight from a remote, each verified by hash (RemoteObjects.read). */
export class RemoteReader implements ObjectReader {
  private readonly seen = new Set<string>()

  constructor(private readonly remote: RemoteObjects) {}

  async get(id: string): Promise<Buffer> {
    const bytes = await this.remote.read(id)
    this.seen.add(id)
    return bytes
  }

  async has(id: string): Promise<boolean> {
    return this.seen.has(id)
  }
}

export function remoteTreeReader(remote: RemoteObjects): TreeReader {
  return new TreeReader(new RemoteReader(remote))
}

/**
 * Checks that a remote holds every object of a commit's snapshot: the structure is read and
 * verified by hash, and the blobs are found by listing (a thousand keys per request, not a
 * request per blob) with the sizes the trees record. Throws OBJECT_MISSING / OBJECT_CORRUPT
 * naming the commit and the remote; nothing is written anywhere.
 */
export async function verifyCommitOnRemote(remote: RemoteObjects, name: string, commitId: string, where: string): Promise<CommitContents> {
  let contents: CommitContents
  try {
    contents = await readCommitContents(remoteTreeReader(remote), commitId)
  } catch (error) {
    const code = (error as {code?: string}).code
    if (code !== 'OBJECT_MISSING' && code !== 'OBJECT_CORRUPT') throw error
    const id = ((error as {data?: {id?: string}}).data?.id) ?? ''
    const what = id === commitId ? `commit ${commitId.slice(0, 10)} is not on ${where}` : `commit ${commitId.slice(0, 10)} is incomplete on ${where}: object ${id.slice(0, 12)} is ${code === 'OBJECT_MISSING' ? 'missing' : 'damaged'}`
    throw new TilesyncError(code, what, {
      hint: `push the commit there again from a repository that has it (\`tilesync push ${name}\`)`,
      data: {commit: commitId, remote: name, ...(id ? {id} : {})},
      cause: error,
    })
  }
  if (contents.blobs.size > 0) {
    // Found by listing (a thousand keys per request), not a request per blob.
    const found = await remote.sizesOf(contents.blobs.keys())
    const missing = [...contents.blobs.keys()].filter((id) => !found.has(id))
    if (missing.length > 0) {
      throw new TilesyncError('OBJECT_MISSING', `commit ${commitId.slice(0, 10)} is incomplete on ${where}: ${missing.length} of ${contents.blobs.size} blob(s) missing, e.g. ${missing[0]}`, {
        hint: `push the commit there again from a repository that has it (\`tilesync push ${name}\`)`,
        data: {commit: commitId, remote: name, missing: missing.slice(0, 20)},
      })
    }
    const wrong = [...contents.blobs].filter(([id, size]) => found.get(id) !== size).map(([id]) => id)
    if (wrong.length > 0) {
      throw new TilesyncError('OBJECT_CORRUPT', `commit ${commitId.slice(0, 10)} has ${wrong.length} damaged blob(s) on ${where} (size differs from the tree), e.g. ${wrong[0]}`, {
        hint: `repair it by pushing from a repository that has the commit`,
        data: {commit: commitId, remote: name, damaged: wrong.slice(0, 20)},
      })
    }
  }
  return contents
}
