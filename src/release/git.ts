import * as fs from 'node:fs'
import * as path from 'node:path'

import git from 'isomorphic-git'

import {TilesyncError} from '../core/errors.js'
import type {Author} from '../snapshot/model.js'

/**
 * The git repository around a dataset, handled with isomorphic-git: no git binary is needed,
 * on a laptop or in CI.
 */

const errName = (error: unknown): string | undefined => (error as {code?: string; name?: string}).code ?? (error as {name?: string}).name

/** The top of the git repository holding `start`, found by walking up as git does. */
export async function findGitRoot(start: string): Promise<string> {
  try {
    return await git.findRoot({fs, filepath: path.resolve(start)})
  } catch (error) {
    if (errName(error) !== 'NotFoundError') throw error
    throw new TilesyncError('NOT_A_REPO', `not inside a git repository (or any parent up to /): ${path.resolve(start)}`, {
      hint: 'releases are reviewed as commits of a git repository: run this inside one (`git init` creates one)',
    })
  }
}

/** A path inside the repository as git names it: relative, with forward slashes. */
export function gitPath(root: string, file: string): string {
  const rel = path.relative(root, path.resolve(file))
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new TilesyncError('BAD_ARGUMENT', `${file} is not inside the git repository at ${root}`, {hint: 'keep the release manifest inside the git repository'})
  }
  return rel.split(path.sep).join('/')
}

async function resolveOrNull(dir: string, ref: string): Promise<string | null> {
  try {
    return await git.resolveRef({fs, dir, ref})
  } catch (error) {
    if (errName(error) === 'NotFoundError') return null
    throw error
  }
}

/** Paths whose staged content differs from HEAD (what a commit would take along). */
export async function stagedPaths(dir: string): Promise<string[]> {
  const head = await resolveOrNull(dir, 'HEAD')
  const trees = head ? [git.TREE({ref: head}), git.STAGE()] : [git.STAGE()]
  const out = await git.walk({
    fs, dir, trees,
    map: async (filepath, entries) => {
      if (filepath === '.') return undefined
      const [a, b] = head ? entries : [null, entries[0]]
      const typeA = a ? await a.type() : undefined
      const typeB = b ? await b.type() : undefined
      if (typeA === 'tree' || typeB === 'tree') return undefined
      const oidA = a ? await a.oid() : undefined
      const oidB = b ? await b.oid() : undefined
      return oidA === oidB ? undefined : filepath
    },
  }) as unknown
  return (Array.isArray(out) ? out.flat(Infinity) : []).filter((p): p is string => typeof p === 'string')
}

/** Git's rules for a branch name, the ones a user can meet. */
export function isValidGitBranch(name: string): boolean {
  return name.length > 0 && !/[\s~^:?*[\\\x00-\x1f\x7f]|\.\.|@\{|\/\/|^\/|\/$|^-|\.lock$|\.$|(^|\/)\./.test(name)
}

/**
 * What would stop a release commit, checked before anything is pushed: an invalid or
 * existing branch name, or staged changes (they would be committed along with the manifest).
 */
export async function assertCanCommitOnNewBranch(dir: string, branch: string): Promise<void> {
  if (!isValidGitBranch(branch)) throw new TilesyncError('BAD_NAME', `"${branch}" is not a valid git branch name`, {hint: 'e.g. release/city-2024-06'})
  if (await resolveOrNull(dir, `refs/heads/${branch}`)) {
    throw new TilesyncError('REF_EXISTS', `git branch "${branch}" already exists in ${dir}`, {hint: 'delete it first, or pass another name with --git-branch'})
  }
  const staged = await stagedPaths(dir)
  if (staged.length > 0) {
    throw new TilesyncError('DIRTY', `the git repository has staged changes (${staged.slice(0, 3).join(', ')}${staged.length > 3 ? ', …' : ''}) that would be committed with the release`, {
      hint: 'commit or unstage them first (`git restore --staged PATH`)',
    })
  }
}

export interface GitCommitResult {
  branch: string
  commit: string
  /** Branch (or commit id, when detached) HEAD was on before. */
  previous: string | null
}

/**
 * Creates `branch` at HEAD, switches HEAD to it (the working tree is the same commit, so
 * nothing else changes), writes the files and commits them. Refuses when the branch exists
 * or other changes are staged (they would be committed too). If anything fails, HEAD, the
 * branch, the index and the files are put back as they were.
 */
export async function commitOnNewBranch(dir: string, options: {branch: string; files: Array<{path: string; content: string}>; message: string; author: Author}): Promise<GitCommitResult> {
  const {branch} = options
  const fullRef = `refs/heads/${branch}`
  await assertCanCommitOnNewBranch(dir, branch)
  const headOid = await resolveOrNull(dir, 'HEAD')
  const previousBranch = await git.currentBranch({fs, dir, fullname: true}) ?? null
  const before = new Map<string, Buffer | null>()
  for (const f of options.files) {
    const abs = path.join(dir, ...f.path.split('/'))
    before.set(f.path, fs.existsSync(abs) ? fs.readFileSync(abs) : null)
  }
  if (headOid) await git.branch({fs, dir, ref: branch, checkout: true})
  else await git.writeRef({fs, dir, ref: 'HEAD', value: fullRef, symbolic: true, force: true})
  try {
    for (const f of options.files) {
      const abs = path.join(dir, ...f.path.split('/'))
      fs.mkdirSync(path.dirname(abs), {recursive: true})
      fs.writeFileSync(abs, f.content)
      await git.add({fs, dir, filepath: f.path})
    }
    const now = Math.floor(Date.now() / 1000)
    const who = {name: options.author.name, email: options.author.email, timestamp: now, timezoneOffset: new Date().getTimezoneOffset()}
    const commit = await git.commit({fs, dir, message: options.message, author: who, committer: who})
    return {branch, commit, previous: previousBranch ?? headOid}
  } catch (error) {
    // Put everything back: HEAD, the branch, the index entries and the files.
    if (previousBranch) await git.writeRef({fs, dir, ref: 'HEAD', value: previousBranch, symbolic: true, force: true}).catch(() => undefined)
    else if (headOid) await git.writeRef({fs, dir, ref: 'HEAD', value: headOid, force: true}).catch(() => undefined)
    await git.deleteRef({fs, dir, ref: fullRef}).catch(() => undefined)
    for (const [p, bytes] of before) {
      const abs = path.join(dir, ...p.split('/'))
      if (bytes === null) fs.rmSync(abs, {force: true})
      else fs.writeFileSync(abs, bytes)
      if (headOid) await git.resetIndex({fs, dir, filepath: p}).catch(() => undefined)
      else await git.remove({fs, dir, filepath: p}).catch(() => undefined)
    }
    throw error
  }
}

/** A file's text at HEAD (the committed version, whatever the working tree holds), with HEAD's id. */
export async function readFileAtHead(dir: string, filepath: string): Promise<{text: string; commit: string}> {
  const commit = await resolveOrNull(dir, 'HEAD')
  if (!commit) {
    throw new TilesyncError('NO_COMMITS', `the git repository at ${dir} has no commits`, {hint: 'merge the release branch first'})
  }
  try {
    const {blob} = await git.readBlob({fs, dir, oid: commit, filepath})
    return {text: Buffer.from(blob).toString('utf8'), commit}
  } catch (error) {
    if (errName(error) !== 'NotFoundError') throw error
    throw new TilesyncError('BAD_ARGUMENT', `there is no ${filepath} at HEAD (${commit.slice(0, 10)}) of the git repository at ${dir}`, {
      hint: 'prepare a release with `tilesync release prepare --staging REMOTE` and merge its branch first',
    })
  }
}
