import * as path from 'node:path'

import {formatBytes} from '../cli/format.js'
import {TilesyncError} from '../core/errors.js'
import {push, type PushResult} from '../ops/push.js'
import {remoteConfig} from '../ops/remotes.js'
import type {Workspace} from '../workspace/workspace.js'
import {defaultAuthor} from '../util/author.js'
import {readCommitContents} from './commit-contents.js'
import {assertCanCommitOnNewBranch, commitOnNewBranch, findGitRoot, gitPath} from './git.js'
import {MANIFEST_FILE, MANIFEST_FORMAT, type ReleaseManifest, serializeManifest} from './manifest.js'
import {assertObjectStoreRemote} from './remotes.js'

export interface PrepareOptions {
  /** Name of the staging remote (configured with `tilesync remote add`). */
  staging: string
  /** Dataset name; default the name of the directory holding `.tilesync/`. */
  name?: string
  /** Tilesync branch to release (pushed to staging, moved on production); default the current branch. */
  branch?: string
  /** Git branch to create for the review; default `release/NAME-COMMIT`. */
  gitBranch?: string
  /** Where to start looking for the git repository; default the working directory. */
  cwd?: string
}

export interface PrepareResult {
  manifest: ReleaseManifest
  /** The manifest file written, absolute. */
  manifestPath: string
  gitRoot: string
  gitBranch: string
  gitCommit: string
  push: PushResult
  nextSteps: string[]
}

/** Where a dataset's release manifest lives: beside `.tilesync/` when that is inside the git repository, else in the working directory. */
export function manifestLocation(gitRoot: string, tilesyncRoot: string | null, cwd: string): string {
  const rel = tilesyncRoot ? path.relative(gitRoot, tilesyncRoot) : '..'
  const inside = !rel.startsWith('..') && !path.isAbsolute(rel)
  return path.join(inside ? tilesyncRoot! : path.resolve(cwd), MANIFEST_FILE)
}

export function releaseBranchName(name: string, commit: string): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '').replace(/\.\.+/g, '.') || 'dataset'
  return `release/${slug}-${commit.slice(0, 10)}`
}

/**
 * First half of a reviewed release: pushes the current commit to the staging remote, then
 * commits a manifest naming it to a new branch of the surrounding git repository (with
 * isomorphic-git). Review and merge that branch; `release publish` does the rest.
 */
export async function prepareRelease(ws: Workspace, options: PrepareOptions): Promise<PrepareResult> {
  const cwd = path.resolve(options.cwd ?? process.cwd())
  const gitRoot = await findGitRoot(cwd)
  const manifestPath = manifestLocation(gitRoot, ws.repo.root, cwd)
  const rel = gitPath(gitRoot, manifestPath)

  const staging = remoteConfig(ws.repo, options.staging)
  assertObjectStoreRemote(staging, `remote "${options.staging}"`)
  const head = await ws.repo.refs.readHead()
  const commit = await ws.repo.refs.headCommit()
  if (!commit) throw new TilesyncError('NO_COMMITS', 'nothing to release: there are no commits yet', {hint: 'commit the database first (`tilesync commit -m ...`)'})
  const branch = options.branch ?? (head.kind === 'branch' ? head.branch : undefined)
  if (!branch) throw new TilesyncError('BAD_ARGUMENT', 'HEAD is detached: say which branch the release moves on production', {hint: 'e.g. `tilesync release prepare --staging staging --branch main`'})
  const tip = await ws.repo.refs.read(`refs/heads/${branch}`)
  if (tip !== commit) {
    throw new TilesyncError('BAD_ARGUMENT', `HEAD (${commit.slice(0, 10)}) is not the tip of branch "${branch}" (${tip ? tip.slice(0, 10) : 'no such branch'}): the release would not be what you have checked out`, {
      hint: `switch to the branch to release (\`tilesync switch ${branch}\`), or name the branch HEAD is on with --branch`,
    })
  }
  const name = options.name ?? path.basename(ws.repo.root)
  const gitBranch = options.gitBranch ?? releaseBranchName(name, commit)
  // Everything that could stop the git commit is checked before anything is pushed.
  await assertCanCommitOnNewBranch(gitRoot, gitBranch)

  const pushed = await push(ws, {remote: options.staging, branch})
  const contents = await readCommitContents(ws.reader, commit)
  const {url, endpoint, region} = staging
  const manifest: ReleaseManifest = {
    format: MANIFEST_FORMAT, version: 1, name,
    remote: {name: options.staging, url, ...(endpoint ? {endpoint} : {}), ...(region ? {region} : {})},
    branch, commit, message: contents.message,
    tiles: contents.tiles, rows: contents.rows, blobs: contents.blobs.size, bytes: contents.bytes,
    database: ws.repo.config.database, createdAt: new Date().toISOString(),
  }
  const summary = `${contents.tiles} tiles, ${contents.rows} rows, ${contents.blobs.size} blobs, ${formatBytes(contents.bytes)}`
  const firstLine = contents.message.split('\n')[0]
  const committed = await commitOnNewBranch(gitRoot, {
    branch: gitBranch,
    files: [{path: rel, content: serializeManifest(manifest)}],
    message: `Release ${name}: tilesync commit ${commit.slice(0, 10)} (${summary})\n\nStaged on ${options.staging} (${url}), branch ${branch}.\nCommit message: ${firstLine}\n`,
    author: await defaultAuthor(),
  })
  const nextSteps = [
    `git push -u origin ${gitBranch}`,
    `open a pull request for ${gitBranch}: reviewers see ${rel} (commit ${commit.slice(0, 10)}, ${summary})`,
    `after the merge, CI (or you) runs: tilesync release publish --production PRODUCTION_REMOTE`,
  ]
  return {manifest, manifestPath, gitRoot, gitBranch, gitCommit: committed.commit, push: pushed, nextSteps}
}
