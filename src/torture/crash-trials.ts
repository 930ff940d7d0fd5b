import Database from 'better-sqlite3'
import {spawn, spawnSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import {openDatabase} from '../db/open-database.js'
import {checkout} from '../ops/checkout.js'
import {clone} from '../ops/clone.js'
import {commit} from '../ops/commit.js'
import {fsckLocal, fsckRemote} from '../ops/fsck.js'
import {gc, LOOSE_PACK_MIN} from '../ops/gc.js'
import {initRepository} from '../ops/init.js'
import {pull} from '../ops/pull.js'
import {push} from '../ops/push.js'
import {addRemote, openRemote} from '../ops/remotes.js'
import {status, type StatusResult} from '../ops/status.js'
import {Workspace} from '../workspace/workspace.js'
import {generateDatabase} from '../sample/generate-database.js'
import {makeTilePng, prng} from '../sample/tile-png.js'
import {PackWriter} from '../store/pack-writer.js'

/**
 * Crash trials: a tilesync command runs as its own process and is killed with SIGKILL after a
 * random delay. Afterwards the repository must pass fsck, the database must equal either the
 * state before or the state after the command (compared row by row, with SQLite's types),
 * refs must name complete commits, and running the command again must complete. Used by
 * test/crash.test.ts (CI-sized) and `npm run torture` (many more trials).
 */
export const CRASH_OPS = ['commit', 'checkout', 'push', 'pull', 'gc'] as const
export type CrashOp = typeof CRASH_OPS[number]

export interface CrashReport {
  op: CrashOp
  trials: number
  /** Where each trial left things: killed before any visible change, killed after it, or finished before the kill. */
  outcomes: {before: number; after: number; completed: number}
  /** Trials where the kill landed while the command was doing its work (after start-up). */
  killedMidWork: number
  /** One line per failed trial (empty when every invariant held). */
  failures: string[]
  /** Re-runs done through the CLI (the rest in-process). */
  cliReruns: number
  ms: number
}

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'run.js')
const DB_REL = 'generations/v01/quadrants.db'
const AUTHOR = {name: 'Crash Test', email: 'crash@example.com'}
const ENV = {TILESYNC_AUTHOR_NAME: AUTHOR.name, TILESYNC_AUTHOR_EMAIL: AUTHOR.email, TILESYNC_NO_PROGRESS: '1'}

/** Every row of every user table with each value's SQLite type, as one comparable string. */
export function dumpDb(file: string): string {
  const db = openDatabase(file, {readonly: true})
  try {
    const out: Record<string, unknown[]> = {}
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name NOT IN ('_tilesync_changes', '_tilesync_state') ORDER BY name`).all() as Array<{name: string}>).map((r) => r.name)
    for (const t of tables) {
      const cols = (db.prepare(`PRAGMA table_xinfo("${t}")`).all() as Array<{name: string}>).map((c) => c.name)
      const sel = cols.map((c) => `typeof("${c}"), hex("${c}")`).join(', ')
      out[t] = db.prepare(`SELECT ${sel} FROM "${t}" ORDER BY ${cols.map((_, i) => i * 2 + 2).join(', ')}`).raw(true).all()
    }
    out.__schema = db.prepare(`SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT IN ('_tilesync_changes', '_tilesync_state') AND NOT (type = 'trigger' AND name GLOB '_tilesync_*' AND (sql LIKE '%INSERT INTO _tilesync_changes %' OR sql LIKE '%UPDATE _tilesync_state SET value = %')) ORDER BY type, name`).raw(true).all()
    return JSON.stringify(out)
  } finally {
    db.close()
  }
}

/** Changes 8 tiles' images, deletes one tile, adds one, and edits the metadata table. */
function editDatabase(file: string, seed: number): void {
  const db = new Database(file)
  try {
    db.exec('BEGIN')
    for (let i = 0; i < 8; i++) db.prepare('UPDATE quadrants SET generation = ?, notes = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(makeTilePng(16, seed * 100 + i), `edit ${seed}`, (i % 6) - 3, Math.floor(i / 6) - 2)
    db.prepare('DELETE FROM quadrants WHERE quadrant_x = 2 AND quadrant_y = 2').run()
    db.prepare('INSERT OR REPLACE INTO quadrants (quadrant_x, quadrant_y, lat, lng, tile_row, tile_col, quadrant_index, generation) VALUES (?, ?, 1.5, 2.5, 9, 9, 0, ?)').run(40 + seed, 40, makeTilePng(16, seed))
    db.prepare('INSERT OR REPLACE INTO metadata (key, value) VALUES (?, ?)').run(`run-${seed}`, `value ${seed}`)
    db.exec('COMMIT')
  } finally {
    db.close()
  }
}

interface Trial {
  dir: string
  remote?: string
}

interface OpSpec {
  /** Builds the template trial (repository, maybe a remote) and what each trial must end in. */
  prepare(root: string): Promise<Trial>
  args: string[]
  /** Checks the state right after the kill; returns 'before' or 'after'. */
  afterKill(t: Trial): Promise<'before' | 'after'>
  /** Runs the same command again (in-process) and checks the final state. */
  rerun(t: Trial): Promise<void>
}

/** Where origin's branch is. */
async function remoteTip(ws: Workspace, branch: string): Promise<string | undefined> {
  const remote = await openRemote(ws.repo, 'origin')
  try {
    return (await remote.readBranch(branch))?.commit ?? undefined
  } finally {
    await remote.close()
  }
}

function fail(message: string): never {
  throw new Error(message)
}

async function expectFsckClean(t: Trial, when: string): Promise<void> {
  const ws = await Workspace.open(t.dir)
  const r = await fsckLocal(ws)
  if (!r.ok) fail(`fsck ${when}: ${r.problems.map((p) => p.message).join(' | ')}`)
  for (const ref of r.refs) if (!ref.complete) fail(`ref ${ref.name} ${when} is not a complete commit`)
  if (t.remote) {
    const rr = await fsckRemote(ws, 'origin')
    if (!rr.ok) fail(`fsck --remote ${when}: ${rr.problems.map((p) => p.message).join(' | ')}`)
  }
}

function summary(s: StatusResult): string {
  return JSON.stringify({tables: s.changes.tables.map((t) => ({...t, rows: t.rows.map((r) => JSON.stringify(r))})), schema: s.changes.schemaChanged})
}

/** The change record must still give the same status as a full read. */
async function expectTrackingConsistent(ws: Workspace, when: string): Promise<StatusResult> {
  const tracked = await status(ws)
  const full = await status(ws, {rescan: true})
  if (summary(tracked) !== summary(full)) fail(`status from the change record differs from a full rescan ${when}`)
  return full
}

async function headOf(dir: string): Promise<string | null> {
  return (await Workspace.open(dir)).repo.refs.headCommit()
}

/** Copies the template, pointing the copy's remote at the copied remote directory. */
function copyTrial(template: Trial, to: string): Trial {
  fs.cpSync(template.dir, path.join(to, 'repo'), {recursive: true, preserveTimestamps: true})
  const t: Trial = {dir: path.join(to, 'repo')}
  if (template.remote) {
    fs.cpSync(template.remote, path.join(to, 'remote'), {recursive: true, preserveTimestamps: true})
    t.remote = path.join(to, 'remote')
    const configFile = path.join(t.dir, '.tilesync', 'config.json')
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as {remotes: Record<string, {url: string}>}
    config.remotes.origin.url = t.remote
    fs.writeFileSync(configFile, JSON.stringify(config, null, 2))
  }
  return t
}

function specs(): Record<CrashOp, OpSpec> {
  // Filled by prepare, read by the checks.
  const s = {before: '', after: '', base: '', target: '', remoteBase: ''}

  const newProject = async (root: string, size = {width: 6, height: 5}): Promise<string> => {
    const dir = path.join(root, 'project')
    generateDatabase(path.join(dir, DB_REL), {...size, imageSize: 16, seed: 7})
    await initRepository({dir})
    return dir
  }

  return {
    commit: {
      args: ['commit', '-m', 'night run'],
      async prepare(root) {
        const dir = await newProject(root)
        const ws = await Workspace.open(dir)
        s.base = (await commit(ws, {message: 'base', author: AUTHOR})).id!
        editDatabase(path.join(dir, DB_REL), 1)
        s.before = dumpDb(path.join(dir, DB_REL))
        return {dir}
      },
      async afterKill(t) {
        if (dumpDb(path.join(t.dir, DB_REL)) !== s.before) fail('commit changed the database')
        const ws = await Workspace.open(t.dir)
        const head = await ws.repo.refs.headCommit()
        const st = await expectTrackingConsistent(ws, 'after the kill')
        if (head === s.base) {
          if (st.clean) fail('HEAD is at the base commit but status is clean')
          return 'before'
        }
        const c = await ws.reader.commit(head!)
        if (c.parents.join() !== s.base) fail(`HEAD ${head} is not a child of the base commit`)
        if (!st.clean) fail('HEAD moved to the new commit but the database differs from it')
        return 'after'
      },
      async rerun(t) {
        const ws = await Workspace.open(t.dir)
        await commit(ws, {message: 'night run', author: AUTHOR})
        const head = await ws.repo.refs.headCommit()
        if ((await ws.reader.commit(head!)).parents.join() !== s.base) fail('after the re-run HEAD is not one commit after the base')
        if (!(await expectTrackingConsistent(ws, 'after the re-run')).clean) fail('status is not clean after the re-run')
      },
    },

    checkout: {
      args: [],
      async prepare(root) {
        const dir = await newProject(root)
        const ws = await Workspace.open(dir)
        s.target = (await commit(ws, {message: 'base', author: AUTHOR})).id!
        s.after = dumpDb(path.join(dir, DB_REL))
        editDatabase(path.join(dir, DB_REL), 2)
        s.base = (await commit(ws, {message: 'edits', author: AUTHOR})).id!
        s.before = dumpDb(path.join(dir, DB_REL))
        this.args = ['checkout', s.target]
        return {dir}
      },
      afterKill: (t) => beforeOrAfter(t.dir, {before: s.before, after: s.after, oldHead: s.base, newHead: s.target, what: 'checkout'}),
      async rerun(t) {
        const ws = await Workspace.open(t.dir)
        await checkout(ws, {revision: s.target})
        await expectRerunLanded(ws, t.dir, s.after, s.target, 'the target')
      },
    },

    push: {
      args: ['push', 'origin', 'main'],
      async prepare(root) {
        const dir = await newProject(root)
        const remote = path.join(root, 'remote')
        const ws = await Workspace.open(dir)
        s.remoteBase = (await commit(ws, {message: 'base', author: AUTHOR})).id!
        await addRemote(ws.repo, 'origin', remote)
        await push(ws, {remote: 'origin', branch: 'main'})
        editDatabase(path.join(dir, DB_REL), 3)
        s.base = (await commit(ws, {message: 'edits', author: AUTHOR})).id!
        s.before = dumpDb(path.join(dir, DB_REL))
        return {dir, remote}
      },
      async afterKill(t) {
        if (dumpDb(path.join(t.dir, DB_REL)) !== s.before) fail('push changed the database')
        const ws = await Workspace.open(t.dir)
        const at = await remoteTip(ws, 'main')
        if (at !== s.remoteBase && at !== s.base) fail(`the remote branch is at ${at}`)
        return at === s.base ? 'after' : 'before'
      },
      async rerun(t) {
        const ws = await Workspace.open(t.dir)
        await push(ws, {remote: 'origin', branch: 'main'})
        if ((await remoteTip(ws, 'main')) !== s.base) fail('after the re-run the remote branch is not the pushed commit')
        if ((await ws.repo.refs.read('refs/remotes/origin/main')) !== s.base) fail('after the re-run origin/main is not the pushed commit')
      },
    },

    pull: {
      args: ['pull', 'origin', 'main'],
      async prepare(root) {
        const dir = await newProject(root)
        const remote = path.join(root, 'remote')
        const ws = await Workspace.open(dir)
        s.remoteBase = (await commit(ws, {message: 'base', author: AUTHOR})).id!
        await addRemote(ws.repo, 'origin', remote)
        await push(ws, {remote: 'origin', branch: 'main'})
        const other = path.join(root, 'other')
        await clone({url: remote, dir: other})
        s.before = dumpDb(path.join(other, DB_REL))
        editDatabase(path.join(dir, DB_REL), 4)
        s.base = (await commit(ws, {message: 'edits', author: AUTHOR})).id!
        s.after = dumpDb(path.join(dir, DB_REL))
        await push(ws, {remote: 'origin', branch: 'main'})
        return {dir: other, remote}
      },
      afterKill: (t) => beforeOrAfter(t.dir, {before: s.before, after: s.after, oldHead: s.remoteBase, newHead: s.base, what: 'pull'}),
      async rerun(t) {
        const ws = await Workspace.open(t.dir)
        await pull(ws, {remote: 'origin', branch: 'main'})
        await expectRerunLanded(ws, t.dir, s.after, s.base, 'the pulled state')
      },
    },

    gc: {
      args: ['gc', '--grace', '1s'],
      async prepare(root) {
        // Larger than the other trials' project: enough loose objects for gc to pack them.
        const dir = await newProject(root, {width: 8, height: 8})
        const first = await Workspace.open(dir)
        s.base = (await commit(first, {message: 'base', author: AUTHOR})).id!
        // A first commit packs small tiles; this trial starts from the loose store an older
        // version (or a run of small commits) leaves: every object loose, no pack.
        const packDir = path.join(first.repo.layout.objects, 'pack')
        for await (const o of first.repo.store.list()) {
          if (!o.pack) continue
          const file = first.repo.store.pathOf(o.id)
          fs.mkdirSync(path.dirname(file), {recursive: true})
          fs.writeFileSync(file, await first.repo.store.get(o.id))
        }
        for (const f of fs.readdirSync(packDir)) fs.rmSync(path.join(packDir, f))
        const ws = await Workspace.open(dir)
        // Objects the base commit needs, moved into 20 small packs: gc merges them, so a kill
        // during the merge that lost one would show as a missing object in fsck. Half of them
        // keep their loose copy too (what a killed packing of loose objects leaves), and the
        // rest of the loose objects are enough for gc to pack: kills land in that as well.
        const reachable: string[] = []
        for await (const o of ws.repo.store.list()) if (!o.pack) reachable.push(o.id)
        if (reachable.length < 40 + LOOSE_PACK_MIN) fail(`the gc trial needs ${40 + LOOSE_PACK_MIN} loose objects, the base commit made ${reachable.length}`)
        for (let p = 0; p < 20; p++) {
          const writer = new PackWriter(path.join(ws.repo.layout.objects, 'pack'), ws.repo.layout.tmp, {durable: true})
          for (const id of reachable.slice(p * 2, p * 2 + 2)) writer.append(id, await ws.repo.store.get(id))
          await writer.finish()
        }
        for (const id of reachable.slice(0, 20)) fs.rmSync(ws.repo.store.pathOf(id))
        // Leftovers of killed commands: objects nothing refers to, and temp files; made old.
        const rand = prng(99)
        const old = new Date(Date.now() - 3_600_000)
        for (let i = 0; i < 300; i++) {
          const bytes = Buffer.from(makeTilePng(8 + Math.floor(rand() * 8), 10_000 + i))
          const id = await ws.repo.store.put(Buffer.concat([bytes, Buffer.from(String(i))]))
          fs.utimesSync(ws.repo.store.pathOf(id), old, old)
        }
        for (let i = 0; i < 20; i++) {
          const f = path.join(ws.repo.layout.tmp, `leftover${i}.tmp`)
          fs.writeFileSync(f, 'x'.repeat(100))
          fs.utimesSync(f, old, old)
        }
        s.before = dumpDb(path.join(dir, DB_REL))
        return {dir}
      },
      async afterKill(t) {
        if (dumpDb(path.join(t.dir, DB_REL)) !== s.before) fail('gc changed the database')
        if ((await headOf(t.dir)) !== s.base) fail('gc moved HEAD')
        const ws = await Workspace.open(t.dir)
        const left = (await fsckLocal(ws)).unreferenced.objects
        return left === 300 ? 'before' : 'after'
      },
      async rerun(t) {
        const ws = await Workspace.open(t.dir)
        await gc(ws, {graceMs: 1000})
        const r = await fsckLocal(ws)
        if (r.unreferenced.objects !== 0) fail(`after the re-run ${r.unreferenced.objects} unreachable objects are left`)
        if (fs.readdirSync(ws.repo.layout.tmp).some((f) => f.startsWith('leftover'))) fail('after the re-run stale temp files are left')
        const packs = fs.readdirSync(path.join(ws.repo.layout.objects, 'pack')).filter((f) => f.endsWith('.idx'))
        if (packs.length !== 1) fail(`after the re-run ${packs.length} packs are left, not one merged pack`)
        let loose = 0
        for await (const o of ws.repo.store.list()) if (!o.pack) loose++
        if (loose !== 0) fail(`after the re-run ${loose} objects are still loose`)
      },
    },
  }
}

function runKilled(cwd: string, args: string[], delayMs: number): Promise<{killed: boolean; code: number | null; stderr: string; ms: number}> {
  return new Promise((resolve) => {
    const start = Date.now()
    const child = spawn(process.execPath, [BIN, ...args], {cwd, env: {...process.env, ...ENV}, stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    let killed = false
    const timer = setTimeout(() => {
      killed = child.kill('SIGKILL')
    }, delayMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({killed: killed && code === null, code, stderr, ms: Date.now() - start})
    })
  })
}

function timeCli(cwd: string, args: string[]): number {
  const start = Date.now()
  const r = spawnSync(process.execPath, [BIN, ...args], {cwd, env: {...process.env, ...ENV}, encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`tilesync ${args.join(' ')} failed while calibrating: ${r.stderr}`)
  return Date.now() - start
}

/**
 * Runs `trials` crash trials of one command in `workDir`. Kill delays are drawn uniformly
 * between most of the start-up time and a little past the time a full run takes (measured
 * first), so most kills land while the command works.
 */
export async function runCrashTrials(op: CrashOp, options: {trials: number; workDir: string; seed?: number; cliRerunEvery?: number; parallel?: number; log?: (line: string) => void}): Promise<CrashReport> {
  const started = Date.now()
  const all = specs()
  const spec = all[op]
  const root = fs.mkdtempSync(path.join(options.workDir, `${op}-`))
  const template = await spec.prepare(path.join(root, 'template'))
  const rand = prng(options.seed ?? 12345)
  // Calibrate: start-up alone (a command that does nothing), and a full run of this one.
  // The quickest of two runs each: a loaded machine only makes runs slower.
  const times = (args: string[]): number => Math.min(...[0, 1].map((i) => {
    const calib = copyTrial(template, path.join(root, `calibrate${i}`))
    try {
      return timeCli(calib.dir, args)
    } finally {
      fs.rmSync(path.join(root, `calibrate${i}`), {recursive: true, force: true})
    }
  }))
  const startup = times(['reflog'])
  const full = times(spec.args)
  const lo = Math.max(0, Math.round(startup * 0.8))
  const hi = Math.max(lo + 20, full)

  const report: CrashReport = {op, trials: 0, outcomes: {before: 0, after: 0, completed: 0}, killedMidWork: 0, failures: [], cliReruns: 0, ms: 0}
  const every = options.cliRerunEvery ?? 10
  const delays = Array.from({length: options.trials}, () => lo + Math.round(rand() * (hi - lo)))
  const one = async (i: number): Promise<void> => {
    const trialDir = path.join(root, `t${i}`)
    const t = copyTrial(template, trialDir)
    const delay = delays[i]
    try {
      const run = await runKilled(t.dir, spec.args, delay)
      if (!run.killed && run.code !== 0) fail(`the un-killed run failed (exit ${run.code}): ${run.stderr.trim()}`)
      if (run.killed && delay >= startup) report.killedMidWork++
      await expectFsckClean(t, 'after the kill')
      const where = await spec.afterKill(t)
      if (!run.killed) report.outcomes.completed++
      else report.outcomes[where]++
      if (every > 0 && i % every === every - 1) {
        // Now and then the re-run goes through the CLI too, exactly as a user would.
        const r = await runKilled(t.dir, spec.args, 600_000)
        if (r.code !== 0) fail(`re-running \`tilesync ${spec.args.join(' ')}\` failed: ${r.stderr.trim()}`)
        report.cliReruns++
      }
      await spec.rerun(t)
      await expectFsckClean(t, 'after the re-run')
      fs.rmSync(trialDir, {recursive: true, force: true})
    } catch (error) {
      // The failed trial's directory is kept for inspection.
      const line = `${op} trial ${i} (kill after ${delay} ms): ${(error as Error).message}`
      report.failures.push(line)
      options.log?.(line)
    } finally {
      report.trials++
    }
  }
  // A few trials at a time: each is mostly a child process starting up.
  let next = 0
  await Promise.all(Array.from({length: Math.max(1, options.parallel ?? 2)}, async () => {
    while (next < options.trials) await one(next++)
  }))
  report.ms = Date.now() - started
  if (report.failures.length === 0) fs.rmSync(root, {recursive: true, force: true})
  return report
}

/** After a killed command is run again: the database, HEAD and status are exactly what the command makes. */
async function expectRerunLanded(ws: Workspace, dir: string, after: string, head: string, what: string): Promise<void> {
  if (dumpDb(path.join(dir, DB_REL)) !== after) fail(`after the re-run the database is not ${what}`)
  if ((await ws.repo.refs.headCommit()) !== head) fail(`after the re-run HEAD is not at ${what}`)
  if (!(await expectTrackingConsistent(ws, 'after the re-run')).clean) fail('status is not clean after the re-run')
}

/**
 * After a kill during a command that writes the database then moves HEAD: the database is the
 * state before (HEAD unmoved) or the state after (HEAD moved or not yet), never anything else.
 */
async function beforeOrAfter(dir: string, x: {before: string; after: string; oldHead: string; newHead: string; what: string}): Promise<'before' | 'after'> {
  const dump = dumpDb(path.join(dir, DB_REL))
  const head = await headOf(dir)
  if (head !== x.oldHead && head !== x.newHead) fail(`HEAD is ${head}`)
  await expectTrackingConsistent(await Workspace.open(dir), 'after the kill')
  if (dump === x.before) {
    if (head !== x.oldHead) fail('HEAD moved but the database was not written')
    return 'before'
  }
  if (dump === x.after) return 'after'
  return fail(`the database is neither the state before nor the state after the ${x.what}`)
}
