import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'

export interface Sample {
  seconds: number
  maxRssMb: number | null
}

const TIME_BIN = existsSync('/usr/bin/time') ? '/usr/bin/time' : null

/**
 * Runs a command as its own process and reports wall time (including process start) and,
 * where GNU time is available, the peak resident memory of the process tree's largest member.
 */
export function measure(cmd: string, args: string[], options: {cwd: string; env?: NodeJS.ProcessEnv; input?: string}): Sample {
  const env = {...process.env, TILESYNC_NO_PROGRESS: '1', ...options.env}
  const start = process.hrtime.bigint()
  const r = TIME_BIN
    ? spawnSync(TIME_BIN, ['-f', '__TIME__ %e %M', cmd, ...args], {cwd: options.cwd, env, encoding: 'utf8', input: options.input, maxBuffer: 1 << 28})
    : spawnSync(cmd, args, {cwd: options.cwd, env, encoding: 'utf8', input: options.input, maxBuffer: 1 << 28})
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr?.slice(-2000)}`)
  const m = /__TIME__ ([\d.]+) (\d+)/.exec(r.stderr ?? '')
  return {seconds, maxRssMb: m ? Number(m[2]) / 1024 : null}
}

export function run(cmd: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, {cwd, env: {...process.env, ...env}, encoding: 'utf8', maxBuffer: 1 << 28})
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr?.slice(-2000)}`)
  return r.stdout
}

export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
