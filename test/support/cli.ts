import {spawnSync} from 'node:child_process'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const BIN = path.join(REPO_ROOT, 'bin', 'run.js')

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

/** Runs the built CLI as a user would: a separate process, no terminal. */
export function cli(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd, encoding: 'utf8', timeout: 120_000,
    env: {...process.env, TILESYNC_AUTHOR_NAME: 'Cli Test', TILESYNC_AUTHOR_EMAIL: 'cli@example.com', ...env},
  })
  return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr}
}

export function cliJson<T = Record<string, unknown>>(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): T {
  const r = cli(cwd, [...args, '--json'], env)
  if (r.code !== 0) throw new Error(`tilesync ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`)
  return JSON.parse(r.stdout) as T
}
