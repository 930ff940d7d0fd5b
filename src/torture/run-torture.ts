import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import {CRASH_OPS, type CrashOp, runCrashTrials} from './crash-trials.js'

/**
 * `npm run torture`: the crash trials of test/crash.test.ts with many more kills.
 *
 *   npm run torture                      # 200 trials of each of commit, checkout, push, pull, gc
 *   npm run torture -- --trials 1000 --ops push,pull --parallel 4 --seed 7
 *
 * Prints one line per operation (trials, where the kills left things, failures) and exits 1
 * when any trial broke an invariant; failed trials are kept under the work directory.
 */
function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const trials = Number(option('trials') ?? 200)
const ops = (option('ops')?.split(',') ?? [...CRASH_OPS]) as CrashOp[]
const parallel = Number(option('parallel') ?? Math.max(1, Math.min(4, os.availableParallelism())))
const seed = Number(option('seed') ?? Date.now() % 1_000_000)
for (const op of ops) if (!CRASH_OPS.includes(op)) throw new Error(`unknown operation "${op}" (one of ${CRASH_OPS.join(', ')})`)
const workDir = fs.mkdtempSync(path.join(option('dir') ?? os.tmpdir(), 'tilesync-torture-'))

console.log(`crash trials: ${trials} per operation, ${parallel} at a time, seed ${seed}, in ${workDir}`)
let failed = 0
for (const op of ops) {
  const r = await runCrashTrials(op, {trials, workDir, seed, parallel, cliRerunEvery: 10, log: (line) => console.log(`  FAILED ${line}`)})
  failed += r.failures.length
  console.log(`${op.padEnd(8)} ${r.trials} trials in ${(r.ms / 1000).toFixed(1)} s: killed before the change ${r.outcomes.before}, after it ${r.outcomes.after}, finished first ${r.outcomes.completed}; killed while working ${r.killedMidWork}; re-run through the CLI ${r.cliReruns}; ${r.failures.length} failure(s)`)
}
if (failed === 0) fs.rmSync(workDir, {recursive: true, force: true})
else console.log(`${failed} failed trial(s) kept in ${workDir}`)
process.exitCode = failed === 0 ? 0 : 1
