import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import {parse} from 'smol-toml'

import {TilesyncError} from '../../core/errors.js'

/**
 * Where oxen credentials and identity come from. Users who already use the official oxen CLI
 * keep working without extra setup (its TOML files are read), and CI can use plain
 * environment variables. The token is only ever returned to the caller: it is never printed,
 * logged, put in an error message or written anywhere.
 */

type Env = Record<string, string | undefined>

export interface OxenIdentity {
  name: string
  email: string
}

/** The official CLI's config directory: OXEN_CONFIG_DIR, else ~/.config/oxen. */
export function oxenConfigDir(env: Env = process.env): string {
  const dir = env.OXEN_CONFIG_DIR?.trim()
  return dir ? path.resolve(dir) : path.join(os.homedir(), '.config', 'oxen')
}

const AUTH_HINT = 'set OXEN_API_TOKEN or run `oxen config --auth HOST TOKEN`'

/**
 * The bearer token for `host` (exactly as in auth_config.toml, port included, e.g.
 * "hub.oxen.ai" or "127.0.0.1:3000"): OXEN_API_TOKEN, else the matching `[[host_configs]]`
 * entry. Throws REMOTE_AUTH naming OXEN_API_TOKEN when there is none.
 */
export async function resolveOxenToken(host: string, env: Env = process.env): Promise<string> {
  const fromEnv = env.OXEN_API_TOKEN?.trim()
  if (fromEnv) return fromEnv
  const file = path.join(oxenConfigDir(env), 'auth_config.toml')
  const doc = await readToml(file)
  const configs = doc?.host_configs
  if (Array.isArray(configs)) {
    for (const c of configs) {
      if (c && typeof c === 'object' && (c as Record<string, unknown>).host === host) {
        const token = (c as Record<string, unknown>).auth_token
        if (typeof token === 'string' && token.trim()) return token.trim()
      }
    }
  }
  throw new TilesyncError('REMOTE_AUTH', `no oxen API token for ${host}: OXEN_API_TOKEN is not set and ${file} has no token for that host`, {
    hint: AUTH_HINT,
    data: {host},
  })
}

/**
 * The commit author for oxen: OXEN_USER_NAME / OXEN_USER_EMAIL, else user_config.toml
 * (`name`, `email`) in the oxen config dir, each field separately. Null when either is
 * missing, so the caller can fall back to its own identity or ask the user.
 */
export async function readOxenIdentity(env: Env = process.env): Promise<OxenIdentity | null> {
  let name = env.OXEN_USER_NAME?.trim() || undefined
  let email = env.OXEN_USER_EMAIL?.trim() || undefined
  if (!name || !email) {
    const doc = await readToml(path.join(oxenConfigDir(env), 'user_config.toml'))
    if (!name && typeof doc?.name === 'string' && doc.name.trim()) name = doc.name.trim()
    if (!email && typeof doc?.email === 'string' && doc.email.trim()) email = doc.email.trim()
  }
  return name && email ? {name, email} : null
}

/**
 * Parses a TOML file; null when it does not exist. Parse errors name the file and line only:
 * the parser's own message quotes the offending line, which may hold a token.
 */
async function readToml(file: string): Promise<Record<string, unknown> | null> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new TilesyncError('BAD_CONFIG', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  try {
    return parse(text) as Record<string, unknown>
  } catch (err) {
    const line = (err as {line?: number}).line
    throw new TilesyncError('BAD_CONFIG', `${file} is not valid TOML${line ? ` (line ${line})` : ''}`, {
      hint: 'fix or remove that file, or set the OXEN_* environment variables',
    })
  }
}
