import {spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {measure, median, type Sample} from './measure.js'

/** What the pair writer reports when it stops (see test/support/pair_writer.py). */
interface WriterReport {
  writes: number
  failures: number
  worst: number
  errors: string[]
}

export interface PipelineCaseOptions {
  /** The bench database (copied into a fresh project for every commit). */
  benchFile: string
  bytes: number
  work: string
  runs: number
  bin: string
  repoRoot: string
  env: NodeJS.ProcessEnv
  record: (kase: string, tool: string, samples: Sample[], extra?: {target?: string; note?: string}) => unknown
}

/** The pipeline as a real second process: Python's sqlite3 (its default 5 s busy timeout), two tiles in one transaction every 20 ms. */
async function startWriter(repoRoot: string, db: string): Promise<{stop: () => Promise<WriterReport>}> {
  const stopFile = `${db}.stop`
  fs.rmSync(stopFile, {force: true})
  const child = spawn('python3', [path.join(repoRoot, 'test', 'support', 'pair_writer.py'), db, stopFile, '5.0', '0.02'], {stdio: ['ignore', 'pipe', 'inherit']})
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  const closed = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)))
  while (!out.includes('ready')) {
    if (child.exitCode !== null) throw new Error('the pipeline writer did not start (python3 missing?)')
    await new Promise((r) => setTimeout(r, 10))
  }
  return {
    stop: async () => {
      fs.writeFileSync(stopFile, '')
      const code = await closed
      fs.rmSync(stopFile, {force: true})
      if (code !== 0) throw new Error(`the pipeline writer exited ${code}`)
      return JSON.parse(out.slice(out.indexOf('{'))) as WriterReport
    },
  }
}

/**
 * `--only pipeline`: the first commit of the bench database (rollback-journal mode, as the
 * pipeline leaves it) while a real pipeline process writes a pair of tiles every 20 ms, next
 * to the same commit with nobody writing, and to the commit as tilesync made it before it read
 * in steps (one read transaction for the whole scan, TILESYNC_SCAN_IN_ONE_TRANSACTION=1), with
 * and without the writer: the writer's failures and worst wait during each, and the times.
 * Every commit starts from a fresh copy of the database; the variants take turns, so a shared
 * machine's drift affects each alike.
 */
export async function pipelineCase(o: PipelineCaseOptions): Promise<void> {
  const project = path.join(o.work, 'pipeline')
  const dbFile = path.join(project, 'generations', 'v01', 'quadrants.db')
  const reset = (): void => {
    fs.rmSync(project, {recursive: true, force: true})
    fs.mkdirSync(path.dirname(dbFile), {recursive: true})
    fs.copyFileSync(o.benchFile, dbFile)
    measure(process.execPath, [o.bin, 'init'], {cwd: project, env: o.env})
  }
  const variants = [
    {name: 'stepped', env: {}, writer: false},
    {name: 'stepped+writer', env: {}, writer: true},
    {name: 'one-transaction', env: {TILESYNC_SCAN_IN_ONE_TRANSACTION: '1'}, writer: false},
    {name: 'one-transaction+writer', env: {TILESYNC_SCAN_IN_ONE_TRANSACTION: '1'}, writer: true},
  ]
  const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]))
  const reports = new Map<string, WriterReport[]>(variants.map((v) => [v.name, []]))
  for (let i = 0; i < o.runs; i++) {
    for (const v of variants) {
      reset()
      const writer = v.writer ? await startWriter(o.repoRoot, dbFile) : null
      let sample: Sample
      try {
        sample = measure(process.execPath, [o.bin, 'commit', '-m', 'first'], {cwd: project, env: {...o.env, ...v.env}})
      } finally {
        const report = await writer?.stop()
        if (report) reports.get(v.name)!.push(report)
      }
      samples.get(v.name)!.push(sample)
    }
  }
  fs.rmSync(project, {recursive: true, force: true})
  const label = `first commit beside a pipeline (${(o.bytes / 1e9).toFixed(2)} GB)`
  const writerNote = (name: string): string => {
    const r = reports.get(name)!
    const worst = Math.max(...r.map((x) => x.worst))
    return `writer (Python sqlite3, 5 s timeout, 2 tiles / 20 ms): ${r.reduce((s, x) => s + x.failures, 0)} failed of ${r.reduce((s, x) => s + x.writes, 0)} writes, worst wait ${worst.toFixed(3)} s (median of runs' worst ${median(r.map((x) => x.worst)).toFixed(3)} s)`
  }
  const base = median(samples.get('one-transaction')!.map((s) => s.seconds))
  const ratio = (name: string): string => `${(median(samples.get(name)!.map((s) => s.seconds)) / base).toFixed(2)}x the one-transaction commit`
  o.record(label, 'tilesync, nobody writing', samples.get('stepped')!, {note: ratio('stepped'), target: '<= 1.10x one transaction'})
  o.record(label, 'tilesync, pipeline writing', samples.get('stepped+writer')!, {note: `${ratio('stepped+writer')}; ${writerNote('stepped+writer')}`, target: '0 failures, worst wait < 1 s'})
  o.record(label, 'one transaction (before), nobody writing', samples.get('one-transaction')!)
  o.record(label, 'one transaction (before), pipeline writing', samples.get('one-transaction+writer')!, {note: writerNote('one-transaction+writer')})
}
