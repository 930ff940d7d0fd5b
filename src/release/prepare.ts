import * as fsp from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'

import {formatBytes} from '../cli/format.js'
import {TilesyncError} from '../core/errors.js'
import {push, type PushResult} from '../ops/push.js'
import {remoteConfig} from '../ops/remotes.js'
import type {Workspace} from '../workspace/workspace.js'
import {defaultAuthor} from '../util/author.js'
import {gitIgnoreWarnings, type GitIgnoreWarning} from '../util/git-ignored.js'
import {describeReleaseChanges, releaseChanges, type ReleaseChanges} from './changes.js'
import {readCommitContents} from './commit-contents.js'
import {assertCanCommitOnNewBranch, commitOnNewBranch, findGitRoot, gitPath, readFileAtHead} from './git.js'
import {MANIFEST_FILE, MANIFEST_FORMAT, parseManifest, type ReleaseManifest, serializeManifest} from './manifest.js'
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
  /** Also write `tilesync diff --html`'s report of the change (beside the manifest) into the commit. */
  html?: boolean
}

/** The report file `--html` writes beside the manifest. */
export const REPORT_FILE = 'tilesync.release.html'

export interface PrepareResult {
  manifest: ReleaseManifest
  /** The manifest file written, absolute. */
  manifestPath: string
  gitRoot: string
  gitBranch: string
  gitCommit: string
  push: PushResult
  /** What changed since the release committed at git HEAD (null: not known here). */
  changes: ReleaseChanges | null
  /** The previous release's commit, from the manifest at git HEAD (null: first release). */
  previous: string | null
  /** The HTML report written and committed (with `html`). */
  report?: string
  /** `.tilesync/` or `.env` that git does not ignore. */
  warnings: GitIgnoreWarning[]
  nextSteps: string[]
}

/** The release committed at git HEAD (the one live, or about to be), or null when there is none yet. */
export async function previousRelease(gitRoot: string, rel: string): Promise<ReleaseManifest | null> {
  try {
    const {text, commit} = await readFileAtHead(gitRoot, rel)
    return parseManifest(text, `${rel} at git ${commit.slice(0, 10)}`)
  } catch (error) {
    const code = (error as {code?: string}).code
    if (code === 'NO_COMMITS' || code === 'BAD_ARGUMENT') return null
    throw error
  }
}

/** The manifest, and the report when asked for, as files of the proposed commit; the commit message lists the change. */
export async function proposalFiles(ws: Workspace, gitRoot: string, manifestPath: string, manifest: ReleaseManifest, changes: ReleaseChanges | null, html: boolean): Promise<{files: Array<{path: string; content: string}>; report?: string}> {
  const files = [{path: gitPath(gitRoot, manifestPath), content: serializeManifest(manifest)}]
  if (!html || !changes) return {files}
  // Loaded only here: the image library is not needed by a release without a report.
  const {writeDiffReport} = await import('../viewer/report.js')
  const report = path.join(path.dirname(manifestPath), REPORT_FILE)
  // Built in a scratch directory: the working tree changes only with the commit (which puts files back if it fails).
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'tilesync-report-'))
  try {
    const built = await writeDiffReport(ws, changes.diff, path.join(scratch, REPORT_FILE))
    files.push({path: gitPath(gitRoot, report), content: await fsp.readFile(built.file, 'utf8')})
  } finally {
    await fsp.rm(scratch, {recursive: true, force: true})
  }
  return {files, report}
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
  const last = await previousRelease(gitRoot, rel)
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
  const previous = last?.commit ?? null
  const changes = await releaseChanges(ws, previous, commit)
  const {files, report} = await proposalFiles(ws, gitRoot, manifestPath, manifest, changes, Boolean(options.html))
  const committed = await commitOnNewBranch(gitRoot, {
    branch: gitBranch,
    files,
    message: `Release ${name}: tilesync commit ${commit.slice(0, 10)} (${summary})\n\nStaged on ${options.staging} (${url}), branch ${branch}.\nCommit message: ${firstLine}\n\n${describeReleaseChanges(changes, previous).join('\n')}\n`,
    author: await defaultAuthor(),
  })
  const nextSteps = [
    `git push -u origin ${gitBranch}`,
    `open a pull request for ${gitBranch}: reviewers see ${rel} (commit ${commit.slice(0, 10)}, ${summary})`,
    `after the merge, CI (or you) runs: tilesync release publish --production PRODUCTION_REMOTE`,
  ]
  const warnings = await gitIgnoreWarnings(ws.repo.root)
  return {manifest, manifestPath, gitRoot, gitBranch, gitCommit: committed.commit, push: pushed, changes, previous, ...(report ? {report} : {}), warnings, nextSteps}
}
