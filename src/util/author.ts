import {execFileSync} from 'node:child_process'
import * as os from 'node:os'

import {TilesyncError} from '../core/errors.js'
import type {Author} from '../snapshot/model.js'

/** Parses "Name <email>". */
export function parseAuthor(text: string): Author {
  const m = /^\s*(.*?)\s*<([^<>]*)>\s*$/.exec(text)
  if (!m || !m[1]) {
    throw new TilesyncError('BAD_ARGUMENT', `--author must look like "Name <email>", got "${text}"`, {hint: 'e.g. --author "Ada Lovelace <ada@example.com>"'})
  }
  return {name: m[1], email: m[2]}
}

function gitConfig(key: string): string | undefined {
  try {
    return execFileSync('git', ['config', '--get', key], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2_000}).trim() || undefined
  } catch {
    return undefined
  }
}

/** Author from TILESYNC_AUTHOR_*, then git's environment variables, then git config, then the OS user. */
export function defaultAuthor(env: NodeJS.ProcessEnv = process.env): Author {
  const name = env.TILESYNC_AUTHOR_NAME ?? env.GIT_AUTHOR_NAME ?? gitConfig('user.name') ?? os.userInfo().username
  const email = env.TILESYNC_AUTHOR_EMAIL ?? env.GIT_AUTHOR_EMAIL ?? gitConfig('user.email') ?? `${os.userInfo().username}@${os.hostname()}`
  return {name, email}
}
