import type {Repository} from '../repo/repository.js'
import {type Author, type Commit, type CommitStats, encodeCommit} from '../snapshot/model.js'

/** Writes a commit object (after its tree, which the caller has stored) and returns its id. */
export async function writeCommit(repo: Repository, input: {tree: string; parents: string[]; author: Author; message: string; stats: CommitStats; timestamp?: number}): Promise<string> {
  const now = input.timestamp ?? Date.now()
  const commit: Commit = {
    tree: input.tree,
    parents: input.parents,
    author: input.author,
    timestamp: now,
    tzOffsetMinutes: -new Date(now).getTimezoneOffset(),
    message: input.message,
    stats: input.stats,
  }
  return repo.store.put(encodeCommit(commit))
}
