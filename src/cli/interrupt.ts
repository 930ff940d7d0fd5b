import * as fs from 'node:fs'
import * as path from 'node:path'

import {RepoLayout, STORE_DIR_NAME} from '../repo/layout.js'
import {repeatInterruptCleanups, runInterruptCleanups} from '../util/interrupt-cleanup.js'

/**
 * Ctrl-C (SIGINT) or SIGTERM during a command: say what is true for that command, remove what
 * it left half-written (temp files, packs that never got their index), release its lock, and
 * exit 130 (143 for SIGTERM), as shells expect. Every command already writes in an order that
 * survives being killed (objects before refs, one SQLite transaction, compare-and-swap last):
 * this handler adds the cleanup `tilesync gc` would otherwise find, and a true message.
 */

/** What each command can truthfully say when stopped; the default fits the rest. */
function messageFor(command: string, headMoved: boolean, head: string | null, undone: number): string {
  switch (command) {
    case 'commit':
      return headMoved ? `interrupted after the commit was recorded (HEAD is ${head?.slice(0, 10)}); unfinished temp files removed` : 'interrupted; nothing committed'
    case 'push':
      return 'interrupted; the push did not finish: `tilesync push` again sends only what is still missing'
    case 'pull': case 'checkout': case 'switch': case 'merge': case 'revert':
      return 'interrupted; the database is written in one transaction, all or nothing: `tilesync status` shows where it is'
    case 'fetch':
      return 'interrupted; remote-tracking refs move only after their objects are in: `tilesync fetch` again fetches the rest'
    case 'clone':
      return undone > 0 ? 'interrupted; the unfinished clone was removed: run it again' : 'interrupted before the clone began; nothing was created'
    default:
      return `interrupted; ${command} stopped before it finished`
  }
}

/** The `.tilesync/` directory around `start`, found without async I/O (a signal handler runs it). */
function findStore(start: string): RepoLayout | null {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, STORE_DIR_NAME, 'HEAD'))) return new RepoLayout(dir)
    if (path.dirname(dir) === dir) return null
  }
}

function readHeadCommit(layout: RepoLayout): string | null {
  try {
    const head = fs.readFileSync(layout.head, 'utf8').trim()
    const m = /^ref: (.+)$/.exec(head)
    if (!m) return head || null
    return fs.readFileSync(layout.ref(m[1]), 'utf8').trim() || null
  } catch {
    return null
  }
}

/**
 * Removes, synchronously, what this process started and did not finish: files in `tmp/`
 * modified since it started, and packs in `objects/pack/` made since then that have no index
 * (they hold objects nothing refers to; a pack is used only once its index is beside it).
 * An index whose pack is gone is removed too. Returns how many files went.
 */
export function removeUnfinished(layout: RepoLayout, sinceMs: number): number {
  let removed = 0
  const young = (file: string): boolean => {
    try {
      return fs.statSync(file).mtimeMs >= sinceMs - 1000
    } catch {
      return false
    }
  }
  const rm = (file: string): void => {
    try {
      fs.rmSync(file, {force: true})
      removed++
    } catch {
      // gone already, or not ours to remove: gc will see it
    }
  }
  for (const name of safeList(layout.tmp)) {
    const file = path.join(layout.tmp, name)
    if (young(file) && fs.statSync(file, {throwIfNoEntry: false})?.isFile()) rm(file)
  }
  const packDir = path.join(layout.objects, 'pack')
  const files = safeList(packDir)
  const indexed = new Set(files.filter((f) => f.endsWith('.idx')).map((f) => f.slice(0, -4)))
  for (const f of files) {
    if (f.endsWith('.pack') && !indexed.has(f.slice(0, -5)) && young(path.join(packDir, f))) rm(path.join(packDir, f))
  }
  for (const f of safeList(packDir)) {
    if (f.endsWith('.idx') && !fs.existsSync(path.join(packDir, `${f.slice(0, -4)}.pack`)) && young(path.join(packDir, f))) rm(path.join(packDir, f))
  }
  return removed
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir)
  } catch {
    return []
  }
}

/**
 * File operations already handed to libuv's thread pool finish while this handler runs, and
 * can create a temp file after it looked: clean again, a few milliseconds apart, until two
 * passes in a row find nothing (at most about a quarter of a second).
 */
function settle(clean: () => number): void {
  const pause = new Int32Array(new SharedArrayBuffer(4))
  let quiet = 0
  for (let pass = 0; pass < 12 && quiet < 2; pass++) {
    quiet = clean() === 0 ? quiet + 1 : 0
    Atomics.wait(pause, 0, 0, 20)
  }
}

/** Our own repository lock (it names this pid), released so the next command need not take it over. */
function releaseOwnLock(layout: RepoLayout): void {
  try {
    if (Number.parseInt(fs.readFileSync(layout.lock, 'utf8'), 10) === process.pid) fs.rmSync(layout.lock, {force: true})
  } catch {
    // no lock, or another's
  }
}

/**
 * Installs the handler for one command run. `json`: the message goes out as the command's
 * JSON error object (code INTERRUPTED) on stdout, as every other failure under --json does.
 */
export function handleInterrupts(command: string, options: {cwd?: string; json?: boolean} = {}): void {
  const started = Date.now()
  const layout = findStore(options.cwd ?? process.cwd())
  const headBefore = layout ? readHeadCommit(layout) : null
  let handled = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (handled) return
    handled = true
    const head = layout ? readHeadCommit(layout) : null
    // What operations registered first (clone: its new directory), then this store's leftovers.
    const undone = runInterruptCleanups()
    // Worker threads still finishing a write can put files back (a clone's pack): again until quiet.
    if (undone) settle(repeatInterruptCleanups)
    if (layout) {
      settle(() => removeUnfinished(layout, started))
      releaseOwnLock(layout)
    }
    const message = messageFor(command, head !== headBefore, head, undone)
    if (options.json) process.stdout.write(JSON.stringify({status: 'error', error: {code: 'INTERRUPTED', message, signal}}) + '\n')
    else process.stderr.write(`\ntilesync: ${message}\n`)
    process.exit(signal === 'SIGTERM' ? 143 : 130)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
}
