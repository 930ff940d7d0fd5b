import {readdirSync, readFileSync, readlinkSync, realpathSync} from 'node:fs'

/** Another process that has the database (or its journal, WAL or shared-memory file) open. */
export interface DatabaseUser {
  pid: number
  command: string
}

/**
 * The other processes that have the database file open, found through /proc (Linux; only
 * processes this user may look into: a pipeline run by another user is not seen). SQLite
 * offers no way to ask who else has a file open, and a pipeline between two transactions
 * holds no lock at all, so "is it open" is the question that tells a user a checkout is about
 * to write under a running program. Empty where /proc is not there.
 */
export function databaseUsers(file: string): DatabaseUser[] {
  if (process.platform !== 'linux') return []
  let real: string
  try {
    real = realpathSync(file)
  } catch {
    return []
  }
  const targets = new Set([real, `${real}-journal`, `${real}-wal`, `${real}-shm`])
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
  } catch {
    return []
  }
  const users: DatabaseUser[] = []
  for (const pid of pids) {
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    const opened = fds.some((fd) => {
      try {
        return targets.has(readlinkSync(`/proc/${pid}/fd/${fd}`))
      } catch {
        return false
      }
    })
    if (opened) users.push({pid: Number(pid), command: commandOf(pid)})
  }
  return users
}

function commandOf(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    return '?'
  }
}

/** "process 1234 (python3)", "processes 1234 (python3), 99 (sqlite3)". */
export function describeUsers(users: DatabaseUser[]): string {
  return `${users.length === 1 ? 'process' : 'processes'} ${users.map((u) => `${u.pid} (${u.command})`).join(', ')}`
}
