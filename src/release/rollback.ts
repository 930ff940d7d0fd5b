import * as fs from 'node:fs'
import * as path from 'node:path'

import {formatBytes} from '../cli/format.js'
import {TilesyncError} from '../core/errors.js'
import {isObjectId} from '../core/hash.js'
import {openRemote} from '../ops/remotes.js'
import type {Workspace} from '../workspace/workspace.js'
import {defaultAuthor} from '../util/author.js'
import {gitIgnoreWarnings} from '../util/git-ignored.js'
import {describeReleaseChanges, releaseChanges} from './changes.js'
import {verifyCommitOnRemote} from './commit-contents.js'
import {assertCanCommitOnNewBranch, commitOnNewBranch, findGitRoot, gitPath} from './git.js'
import {manifestRemoteConfig, MANIFEST_FORMAT, readManifestFile, type ReleaseManifest} from './manifest.js'
import {manifestLocation, type PrepareResult, previousRelease, proposalFiles} from './prepare.js'
import {assertObjectStoreRemote, RunRemotes} from './remotes.js'

export interface RollbackOptions {
  /** A release manifest file, or a tilesync revision (commit id, tag, HEAD~2, ...). */
  to: string
  /** Git branch to create for the review; default `release/NAME-rollback-COMMIT`. */
  gitBranch?: string
  html?: boolean
  cwd?: string
}

export type RollbackResult = Omit<PrepareResult, 'push'> & {
  /** The commit production serves now (the release at git HEAD), which the rollback replaces. */
  from: string
}

/**
 * Proposes a rollback as a pull request, as `release prepare` proposes a release: a manifest
 * naming the older commit, marked as a rollback from the release committed at git HEAD,
 * committed to a new git branch. Nothing is pushed: the commit must still be complete on
 * staging (checked here, every tree read and every blob listed), where publish will read it.
 * Once merged, `release publish` moves production back to exactly that commit.
 */
export async function prepareRollback(ws: Workspace, options: RollbackOptions): Promise<RollbackResult> {
  const cwd = path.resolve(options.cwd ?? process.cwd())
  const gitRoot = await findGitRoot(cwd)
  const manifestPath = manifestLocation(gitRoot, ws.repo.root, cwd)
  const rel = gitPath(gitRoot, manifestPath)
  const current = await previousRelease(gitRoot, rel)
  if (!current) {
    throw new TilesyncError('NO_COMMITS', `there is no release to roll back: ${rel} is not committed at git HEAD of ${gitRoot}`, {
      hint: 'roll back from the branch the releases are merged into (e.g. `git switch main`)',
    })
  }
  const target = await targetCommit(ws, options.to, cwd)
  if (target === current.commit) {
    throw new TilesyncError('BAD_ARGUMENT', `release "${current.name}" already is commit ${target.slice(0, 10)}: there is nothing to roll back to`, {
      hint: 'name an earlier release: `tilesync release list` shows them',
    })
  }
  const gitBranch = options.gitBranch ?? `release/${slug(current.name)}-rollback-${target.slice(0, 10)}`
  await assertCanCommitOnNewBranch(gitRoot, gitBranch)

  // The commit must still be on staging: publish reads it there (a pruned staging cannot serve it).
  const remotes = new RunRemotes(ws.repo, cwd)
  let contents
  try {
    const staging = remotes.byLocation(manifestRemoteConfig(current), current.remote.name)
    assertObjectStoreRemote(ws.repo.config.remotes[staging], `staging remote "${staging}"`)
    const remote = await openRemote(ws.repo, staging)
    try {
      if (!remote.objects) throw new TilesyncError('REMOTE_UNSUPPORTED', `staging remote "${staging}" does not keep objects`)
      contents = await verifyCommitOnRemote(remote.objects, staging, target, `staging remote "${staging}" (${current.remote.url})`)
    } finally {
      await remote.close()
    }
  } finally {
    remotes.release()
  }

  const manifest: ReleaseManifest = {
    format: MANIFEST_FORMAT, version: 1, name: current.name, remote: current.remote, branch: current.branch,
    commit: target, message: contents.message,
    tiles: contents.tiles, rows: contents.rows, blobs: contents.blobs.size, bytes: contents.bytes,
    database: current.database, createdAt: new Date().toISOString(), rollback: {from: current.commit},
  }
  const changes = await releaseChanges(ws, current.commit, target)
  const {files, report} = await proposalFiles(ws, gitRoot, manifestPath, manifest, changes, Boolean(options.html))
  const summary = `${manifest.tiles} tiles, ${manifest.rows} rows, ${manifest.blobs} blobs, ${formatBytes(manifest.bytes)}`
  const committed = await commitOnNewBranch(gitRoot, {
    branch: gitBranch,
    files,
    message: `Roll back ${current.name} to tilesync commit ${target.slice(0, 10)} (${summary})\n\n`
      + `Production goes back from ${current.commit.slice(0, 10)} to ${target.slice(0, 10)} (branch ${current.branch}).\n`
      + `Commit message: ${contents.message.split('\n')[0]}\n\n${describeReleaseChanges(changes, current.commit).join('\n')}\n`,
    author: await defaultAuthor(),
  })
  const nextSteps = [
    `git push -u origin ${gitBranch}`,
    `open a pull request for ${gitBranch}: reviewers see ${rel} go back from ${current.commit.slice(0, 10)} to ${target.slice(0, 10)}`,
    'after the merge, CI (or you) runs: tilesync release publish --production PRODUCTION_REMOTE',
  ]
  return {
    manifest, manifestPath, gitRoot, gitBranch, gitCommit: committed.commit, changes, previous: current.commit, from: current.commit,
    ...(report ? {report} : {}), warnings: await gitIgnoreWarnings(ws.repo.root), nextSteps,
  }
}

/** `--to`: a manifest file (its commit), else a revision of this repository. */
async function targetCommit(ws: Workspace, to: string, cwd: string): Promise<string> {
  const file = path.resolve(cwd, to)
  if (fs.existsSync(file) && fs.statSync(file).isFile()) return (await readManifestFile(file)).commit
  // A full id needs no local copy: staging is where it is checked.
  if (isObjectId(to)) return to
  return ws.resolve(to)
}

function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '').replace(/\.\.+/g, '.') || 'dataset'
}
