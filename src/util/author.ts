import {execFile} from 'node:child_process'
import * as os from 'node:os'

import {TilesyncError} from '../core/errors.js'

/** A commit's author, as snapshot/model.ts declares it (util sits below snapshot, so the shape is repeated here). */
export interface Author {
  name: string
  email: string
}

/** Parses "Name <email>". */
export function parseAuthor(text: string): Author {
  const m = /^\s*(.*?)\s*<([^<>]*)>\s*$/.exec(text)
  if (!m || !m[1]) {
    throw new TilesyncError('BAD_ARGUMENT', `--author must look like "Name <email>", got "${text}"`, {hint: 'e.g. --author "Ada Lovelace <ada@example.com>"'})
  }
  return {name: m[1], email: m[2]}
}

/**
 * user.name and user.email from git's config, in one run of git (each run costs 10-20 ms,
 * which a small commit feels). Exit status 1 means neither is set.
 */
function gitIdentity(env: NodeJS.ProcessEnv): Promise<{name?: string; email?: string}> {
  return new Promise((resolve) => {
    execFile('git', ['config', '--get-regexp', '^user\\.(name|email)$'], {encoding: 'utf8', timeout: 2_000, env}, (_error, stdout) => {
      const found: {name?: string; email?: string} = {}
      // Later lines win, as with `git config --get` (a repository's value overrides the global one).
      for (const line of (stdout ?? '').split('\n')) {
        const m = /^user\.(name|email) (.+)$/.exec(line.trim())
        if (m) found[m[1] as 'name' | 'email'] = m[2]
      }
      resolve(found)
    })
  })
}

/**
 * Author from TILESYNC_AUTHOR_*, then git's environment variables, then git config, then the
 * OS user. Asynchronous so that a command can start it early and let git run alongside its work.
 */
export async function defaultAuthor(env: NodeJS.ProcessEnv = process.env): Promise<Author> {
  let name = env.TILESYNC_AUTHOR_NAME ?? env.GIT_AUTHOR_NAME
  let email = env.TILESYNC_AUTHOR_EMAIL ?? env.GIT_AUTHOR_EMAIL
  if (name === undefined || email === undefined) {
    const git = await gitIdentity(env)
    name ??= git.name
    email ??= git.email
  }
  return {name: name ?? os.userInfo().username, email: email ?? `${os.userInfo().username}@${os.hostname()}`}
}
