import {createHash, timingSafeEqual} from 'node:crypto'
import * as fs from 'node:fs/promises'

import {TilesyncError} from '../core/errors.js'

/** Shorter tokens are refused: the API can push and pull for anyone who guesses it. */
export const MIN_TOKEN_LENGTH = 16

/**
 * The API's bearer token: from `--token-file FILE` (its first line; the file must not be
 * readable by others) or else TILESYNC_API_TOKEN. Without one the API does not start. The
 * token is never written anywhere, logged or put in a message.
 */
export async function resolveApiToken(options: {tokenFile?: string; env?: NodeJS.ProcessEnv} = {}): Promise<string> {
  const env = options.env ?? process.env
  let token: string | undefined
  let where: string
  if (options.tokenFile) {
    where = `token file ${options.tokenFile}`
    const st = await fs.stat(options.tokenFile).catch(() => null)
    if (!st?.isFile()) throw new TilesyncError('BAD_ARGUMENT', `no ${where}`, {hint: 'write the token to a file only you can read (chmod 600), or set TILESYNC_API_TOKEN'})
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new TilesyncError('BAD_ARGUMENT', `${where} can be read by other users; the API did not start`, {hint: `run \`chmod 600 ${options.tokenFile}\``})
    }
    token = (await fs.readFile(options.tokenFile, 'utf8')).split(/\r?\n/)[0]?.trim()
  } else {
    where = 'TILESYNC_API_TOKEN'
    token = env.TILESYNC_API_TOKEN?.trim()
  }
  if (!token) {
    throw new TilesyncError('BAD_ARGUMENT', `serve --api needs a token and ${where} is empty or unset; the API did not start`, {
      hint: 'set TILESYNC_API_TOKEN (e.g. to the output of `openssl rand -hex 32`) or pass --token-file FILE',
    })
  }
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new TilesyncError('BAD_ARGUMENT', `the token in ${where} is too weak (at least ${MIN_TOKEN_LENGTH} characters, no spaces); the API did not start`, {
      hint: 'use e.g. the output of `openssl rand -hex 32`',
    })
  }
  return token
}

/**
 * Whether an Authorization header carries the token, compared in constant time: both sides
 * are hashed first, so neither the length nor any prefix of the token shows in the timing.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header ?? '')
  const given = createHash('sha256').update(m ? m[1] : '').digest()
  const wanted = createHash('sha256').update(token).digest()
  return timingSafeEqual(given, wanted) && m !== null
}
