import {execFile} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import git from 'isomorphic-git'

/** A path the surrounding git repository would take into a commit, and why that matters. */
export interface GitIgnoreWarning {
  path: string
  gitRoot: string
  message: string
}

/**
 * Whether git ignores `rel` (relative to `gitRoot`): `git check-ignore`, which knows every
 * source of ignore rules (global excludes, .git/info/exclude) and says "not ignored" for a
 * tracked file, as a commit would treat it; isomorphic-git's reading of the .gitignore files
 * where no git binary is installed.
 */
async function isIgnored(gitRoot: string, rel: string): Promise<boolean> {
  const viaBinary = await new Promise<boolean | null>((resolve) => {
    execFile('git', ['check-ignore', '-q', '--', rel], {cwd: gitRoot, timeout: 10_000}, (error) => {
      if (!error) return resolve(true)
      const code = (error as {code?: unknown}).code
      resolve(code === 1 ? false : null)
    })
  })
  if (viaBinary !== null) return viaBinary
  try {
    return await git.isIgnored({fs, dir: gitRoot, filepath: rel})
  } catch {
    return true
  }
}

/**
 * Warnings for a tilesync repository at `root` inside a git repository: `.tilesync/` (the
 * object store, gigabytes) and an existing `.env` (credentials) that git does not ignore
 * would be committed by the next `git add -A`. Nothing when `root` is not inside a git
 * repository.
 */
export async function gitIgnoreWarnings(root: string): Promise<GitIgnoreWarning[]> {
  let gitRoot: string
  try {
    gitRoot = await git.findRoot({fs, filepath: path.resolve(root)})
  } catch {
    return []
  }
  const out: GitIgnoreWarning[] = []
  const relOf = (p: string): string => path.relative(gitRoot, p).split(path.sep).join('/')
  const store = relOf(path.join(root, '.tilesync'))
  // A file inside: matches ".tilesync" and ".tilesync/" patterns alike.
  if (!(await isIgnored(gitRoot, `${store}/config.json`))) {
    out.push({path: `${store}/`, gitRoot, message: `${store}/ is not ignored by the git repository at ${gitRoot}: \`git add\` would commit the object store (add "${store}/" to .gitignore)`})
  }
  const envs = [...new Set([path.join(gitRoot, '.env'), path.join(path.resolve(root), '.env')])]
  for (const env of envs) {
    if (!fs.existsSync(env)) continue
    const rel = relOf(env)
    if (!(await isIgnored(gitRoot, rel))) {
      out.push({path: rel, gitRoot, message: `${rel} is not ignored by the git repository at ${gitRoot}: \`git add\` would commit your credentials (add "${rel}" to .gitignore)`})
    }
  }
  return out
}
