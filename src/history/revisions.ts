import * as fs from 'node:fs/promises'
import * as path from 'node:path'

import {isTilesyncError, TilesyncError} from '../core/errors.js'
import {isObjectId} from '../core/hash.js'
import {decodeCommit} from '../snapshot/model.js'
import type {Repository} from '../repo/repository.js'
import type {TreeReader} from '../snapshot/tree-reader.js'

const REVISION_PATTERN = /^([^~^@]+|HEAD|[^~^@]*@\{\d+\})((?:~\d*|\^\d*)*)$/

/**
 * Resolves git-style revisions: HEAD, HEAD~N, HEAD^, HEAD^2, NAME@{N} (reflog), branch and
 * tag names, remote branches (origin/main), full ids and unique id prefixes of 4+ hex digits.
 */
export async function resolveRevision(repo: Repository, reader: TreeReader, revision: string): Promise<string> {
  const rev = revision.trim()
  const m = REVISION_PATTERN.exec(rev)
  if (!m || rev.length > 256) {
    throw new TilesyncError('BAD_REVISION', `"${revision}" is not a valid revision`, {
      hint: 'use HEAD, HEAD~N, a branch or tag name, or a commit id (4+ hex digits)',
    })
  }
  let id = await resolveBase(repo, m[1])
  const suffixes = m[2].match(/~\d*|\^\d*/g) ?? []
  let walked = 0
  for (const s of suffixes) {
    const n = s.length > 1 ? Number.parseInt(s.slice(1), 10) : 1
    if (s[0] === '~') {
      for (let i = 0; i < n; i++) {
        const c = await reader.commit(id)
        if (c.parents.length === 0) {
          throw new TilesyncError('REVISION_OUT_OF_RANGE', `${revision} goes back past the first commit (history has ${walked + 1} commit${walked === 0 ? '' : 's'} on that path)`, {
            hint: '`tilesync log` lists the commits',
          })
        }
        id = c.parents[0]
        walked++
      }
    } else if (n > 0) {
      const c = await reader.commit(id)
      if (c.parents.length < n) {
        throw new TilesyncError('REVISION_OUT_OF_RANGE', `${revision}: commit ${id.slice(0, 10)} has ${c.parents.length} parent(s)`, {hint: '`tilesync log` lists the commits'})
      }
      id = c.parents[n - 1]
      walked++
    }
  }
  return id
}

async function resolveBase(repo: Repository, base: string): Promise<string> {
  const reflog = /^(.*)@\{(\d+)\}$/.exec(base)
  if (reflog) return resolveReflog(repo, reflog[1] || 'HEAD', Number(reflog[2]))
  if (base === 'HEAD') {
    const id = await repo.refs.headCommit()
    if (!id) throw new TilesyncError('NO_COMMITS', 'there are no commits yet', {hint: 'run `tilesync commit -m "first snapshot"`'})
    return id
  }
  for (const ref of [`refs/heads/${base}`, `refs/tags/${base}`, `refs/remotes/${base}`, base.startsWith('refs/') ? base : null]) {
    if (!ref || ref.includes('..')) continue
    const id = await repo.refs.read(ref).catch(() => null)
    if (id) return id
  }
  if (/^[0-9a-f]{4,64}$/.test(base)) return resolvePrefix(repo, base)
  throw new TilesyncError('UNKNOWN_REVISION', `unknown revision "${base}"`, {
    hint: 'see `tilesync log`, `tilesync branch` and `tilesync tag` for what exists',
  })
}

async function resolveReflog(repo: Repository, name: string, n: number): Promise<string> {
  const ref = name === 'HEAD' ? 'HEAD' : `refs/heads/${name}`
  const entries = await repo.refs.readReflog(ref)
  const states = entries.map((e) => e.new).reverse()
  const id = states[n]
  if (!id) {
    throw new TilesyncError('REVISION_OUT_OF_RANGE', `${name}@{${n}}: the reflog of ${name} has ${states.length} entr${states.length === 1 ? 'y' : 'ies'}`, {
      hint: '`tilesync reflog` lists them',
    })
  }
  return id
}

async function resolvePrefix(repo: Repository, prefix: string): Promise<string> {
  if (isObjectId(prefix)) {
    if (await isCommit(repo, prefix)) return prefix
    throw new TilesyncError('UNKNOWN_REVISION', `no commit ${prefix}`, {hint: 'see `tilesync log`'})
  }
  const dir = path.join(repo.layout.objects, prefix.slice(0, 2))
  const names = await fs.readdir(dir).catch(() => [] as string[])
  const candidates: string[] = []
  for (const n of names) {
    if (!n.startsWith(prefix.slice(2))) continue
    const id = prefix.slice(0, 2) + n
    if (await isCommit(repo, id)) candidates.push(id)
  }
  if (candidates.length === 1) return candidates[0]
  if (candidates.length === 0) {
    throw new TilesyncError('UNKNOWN_REVISION', `unknown revision "${prefix}"`, {hint: 'see `tilesync log` for commit ids'})
  }
  throw new TilesyncError('AMBIGUOUS_REVISION', `"${prefix}" matches ${candidates.length} commits (${candidates.map((c) => c.slice(0, 10)).join(', ')})`, {
    hint: 'give more digits of the id',
  })
}

async function isCommit(repo: Repository, id: string): Promise<boolean> {
  try {
    decodeCommit(await repo.store.get(id))
    return true
  } catch (error) {
    if (isTilesyncError(error, 'OBJECT_MISSING')) return false
    if (isTilesyncError(error, 'OBJECT_CORRUPT')) {
      // A damaged object that claims to be a commit must not be silently skipped.
      const raw = (await repo.store.readRaw(id).catch(() => null)) ?? Buffer.alloc(0)
      if (raw.includes(Buffer.from('tilesync.commit'))) throw error
    }
    return false
  }
}
