import {expect} from 'chai'
import {spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {setWaitNotice} from '../src/db/open-database.js'
import {readTrackingState} from '../src/db/change-tracking.js'
import {checkout} from '../src/ops/checkout.js'
import {commit} from '../src/ops/commit.js'
import {fsckLocal} from '../src/ops/fsck.js'
import {initRepository} from '../src/ops/init.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {REPO_ROOT} from './support/cli.js'
import {makeProject, withDb} from './support/fixtures.js'

const author = {name: 'T', email: 't@x'}
const WRITER = path.join(REPO_ROOT, 'test', 'support', 'pair_writer.py')

interface WriterReport {
  writes: number
  failures: number
  worst: number
  errors: string[]
}

/** The pipeline as a real second process: Python's sqlite3 with a 1 s busy timeout, a pair of tiles every 20 ms. */
async function startPairWriter(db: string): Promise<{stop: () => Promise<WriterReport>; writes: () => number}> {
  const stopFile = path.join(path.dirname(db), `stop-${process.pid}-${Date.now()}`)
  const child = spawn('python3', [WRITER, db, stopFile, '1.0', '0.02'], {stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { err += d })
  const closed = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)))
  await until(() => out.includes('ready'), 'the writer to start')
  return {
    writes: () => Number(withDb(db, (d) => (d.prepare(`SELECT notes FROM quadrants WHERE quadrant_x = 0 AND quadrant_y = 0`).pluck().get() as string | null)?.slice(1) ?? 0)),
    stop: async () => {
      fs.writeFileSync(stopFile, '')
      const code = await closed
      if (code !== 0) throw new Error(`pair writer exited ${code}: ${err}`)
      return JSON.parse(out.slice(out.indexOf('{'))) as WriterReport
    },
  }
}

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** The notes of the pair in a commit: always equal (both old or both new). */
async function pairIn(ws: Workspace, commitId: string): Promise<[unknown, unknown]> {
  const state = await ws.stateOf(commitId)
  const table = state.tables.get('quadrants')!
  const col = (name: string): number => table.columns.findIndex((c) => c.name === name)
  const notes = new Map<string, unknown>()
  for await (const row of ws.reader.rows(table)) {
    const [x, y] = [Number(row.values[col('quadrant_x')]), Number(row.values[col('quadrant_y')])]
    if (y === 0 && (x === 0 || x === 1)) notes.set(String(x), row.values[col('notes')])
  }
  expect(notes.size, 'both tiles of the pair are in the commit').to.equal(2)
  return [notes.get('0'), notes.get('1')]
}

/**
 * A database whose full scan takes seconds: 2,304 tiles of 288 KB of random bytes (650 MB),
 * written with SQLite's randomblob. Read in one transaction (TILESYNC_SCAN_IN_ONE_TRANSACTION=1,
 * as before) the writer below fails.
 */
function bigProject(mode: string): {dir: string; db: string} {
  const project = makeProject({width: 48, height: 48})
  withDb(project.db, (d) => {
    d.pragma(`journal_mode = ${mode}`)
    d.exec(`UPDATE quadrants SET render = randomblob(288 * 1024), notes = 'p0'`)
  })
  return project
}

describe('beside a writing pipeline (a real second process)', () => {
  for (const mode of ['DELETE', 'WAL']) {
    it(`the writer never fails with a 1 s timeout during the first commit, status --rescan and a commit from the record; every commit holds the pair together (${mode})`, async function () {
      this.timeout(300_000)
      const {dir, db} = bigProject(mode)
      await initRepository({dir})
      const ws = await Workspace.open(dir)
      const writer = await startPairWriter(db)
      const commits: string[] = []
      let during: number[]
      try {
        const before = writer.writes()
        const first = await commit(ws, {message: 'first, while the pipeline writes', author})
        commits.push(first.id!)
        const afterFirst = writer.writes()
        const rescan = await status(ws, {rescan: true})
        expect(rescan.scan.incremental).to.equal(false)
        // SQLite's whole-file check would hold the writer for its duration: left to fsck.
        expect(rescan.scan.notes.join('\n')).to.match(/integrity check was skipped: the database is open in process \d+ \(python3\)/)
        const afterRescan = writer.writes()
        const second = await commit(ws, {message: 'from the record', author})
        expect(second.scan.incremental, second.scan.reason).to.equal(true)
        commits.push(second.id!)
        const full = await commit(ws, {message: 'full rescan', author, rescan: true})
        commits.push(full.id!)
        during = [afterFirst - before, afterRescan - afterFirst]
      } finally {
        var report = await writer.stop()
      }
      expect(report.failures, report.errors.join('; ')).to.equal(0)
      // The writer kept writing through the commit and the rescan: it was never held for long.
      expect(during[0], 'writes during the first commit').to.be.greaterThan(10)
      expect(during[1], 'writes during status --rescan').to.be.greaterThan(2)
      for (const id of commits) {
        const [a, b] = await pairIn(ws, id)
        expect(a, `commit ${id}`).to.equal(b)
      }
      // The pipeline's last writes came after the last commit: the next one finds them.
      const last = await commit(ws, {message: 'after', author})
      const [a, b] = await pairIn(ws, last.id!)
      expect([a, b]).to.deep.equal([`p${report.writes}`, `p${report.writes}`])
      expect((await status(ws, {rescan: true})).clean).to.equal(true)
      // Two copies of 650 MB (the database and its store) need not wait for the end of the run.
      fs.rmSync(dir, {recursive: true, force: true})
    })

    it(`a commit started during the pipeline's write transaction waits, says so, and succeeds; checkout says the database is open (${mode})`, async function () {
      this.timeout(120_000)
      const {dir, db} = makeProject({width: 6, height: 5})
      withDb(db, (d) => d.pragma(`journal_mode = ${mode}`))
      await initRepository({dir})
      const ws = await Workspace.open(dir)
      await commit(ws, {message: 'base', author})
      withDb(db, (d) => d.exec(`UPDATE quadrants SET notes = 'before' WHERE quadrant_x IN (0, 1) AND quadrant_y = 0`))
      const holder = spawn('python3', [WRITER, db, '--hold', '2.5'], {stdio: ['ignore', 'pipe', 'pipe']})
      let out = ''
      holder.stdout.on('data', (d) => { out += d })
      const closed = new Promise<number>((resolve) => holder.on('close', (code) => resolve(code ?? -1)))
      await until(() => out.includes('ready'), 'the holder to start')
      const notices: string[] = []
      const restore = setWaitNotice((t) => notices.push(t))
      let made
      try {
        made = await commit(ws, {message: 'during the write transaction', author})
      } finally {
        setWaitNotice(restore)
      }
      expect(await closed).to.equal(0)
      expect(made.committed).to.equal(true)
      // What was committed before the pipeline's transaction, both tiles alike.
      expect(await pairIn(ws, made.id!)).to.deep.equal(['before', 'before'])
      // It waited for the pipeline's lock to move the record's baseline, and said so.
      expect(notices.join('\n')).to.match(/waiting for the database .*another program is writing it/)
      expect(withDb(db, (d) => readTrackingState(d).baseline)).to.equal((await ws.stateOf(made.id!)).snapshotId)
      // The pipeline's transaction shows as the next change.
      const after = await status(ws)
      expect(after.changes.summary.rowsChanged).to.equal(2)

      // A checkout beside an open pipeline says so first (and --dry-run too), then writes.
      const writer = await startPairWriter(db)
      const told: string[] = []
      try {
        const dry = await checkout(ws, {revision: 'HEAD~1', force: true, dryRun: true, onInUse: (u) => told.push(`dry ${u.map((x) => x.command).join(',')}`)})
        expect(dry.inUse?.map((u) => u.command)).to.include('python3')
        const done = await checkout(ws, {revision: 'HEAD~1', force: true, onInUse: (u) => told.push(`real ${u.map((x) => x.command).join(',')}`)})
        expect(done.rowsWritten).to.be.greaterThan(0)
        // fsck leaves SQLite's whole-file check out beside the open database, and says so; --database runs it.
        const checked = await fsckLocal(ws)
        expect(checked.databaseSkipped).to.match(/open in process \d+ \(python3\)/)
        expect((await fsckLocal(ws, {database: true})).databaseSkipped).to.equal(undefined)
      } finally {
        var report = await writer.stop()
      }
      expect(told).to.deep.equal(['dry python3', 'real python3'])
      expect(report.failures, report.errors.join('; ')).to.equal(0)
    })
  }
})
