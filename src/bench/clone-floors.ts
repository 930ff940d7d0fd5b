/**
 * `node dist/src/bench/clone-floors.js hash|insert DIR`: how long one part of a clone takes on
 * its own, for every object under DIR (a loose file, or each object of a pack), with the bytes already in memory. It prints that time
 * alone, in seconds: no process start, no reads of DIR, no fsync. Run it where a clone would
 * write: the insert's database is made in the working directory, and removed.
 * - `hash`: the project's BLAKE3 (native where it loads, else blake3-wasm; see core/hash.ts) on all
 *   cores, as a clone verifies each object.
 * - `insert`: each file as a row of a new database, written as a clone writes one (its page
 *   size, no journal, no syncs), on the one thread SQLite writes from.
 * A clone does both, so each is a floor no clone can go below on this machine.
 */
import {mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {isMainThread, parentPort, Worker, workerData} from 'node:worker_threads'

import {hashBytes} from '../core/hash.js'
import {createDatabase} from '../db/open-database.js'
import {decodeIndex} from '../store/pack-format.js'

interface Share {files: string[]}
interface Timed {seconds: number; bytes: number}

function filesUnder(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, {withFileTypes: true})) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) filesUnder(p, out)
    else if (e.isFile()) out.push(p)
  }
  return out
}

/**
 * The objects stored in `files`, each as its own buffer: a loose object file is one, a pack
 * (with its index beside it) holds many, and an index is none.
 */
function objectsIn(files: string[]): Buffer[] {
  const out: Buffer[] = []
  for (const f of files) {
    if (f.endsWith('.idx')) continue
    const bytes = readFileSync(f)
    if (!f.endsWith('.pack')) {
      out.push(bytes)
      continue
    }
    for (const e of decodeIndex(readFileSync(f.replace(/\.pack$/, '.idx')))) out.push(bytes.subarray(e.offset, e.offset + e.length))
  }
  return out
}

const seconds = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9

async function hashFloor(files: string[]): Promise<Timed & {cores: number}> {
  const cores = Math.max(1, os.availableParallelism())
  const shares: Share[] = Array.from({length: cores}, () => ({files: []}))
  // A pack goes to one worker with its index (its objects are hashed there).
  files.filter((f) => !f.endsWith('.idx')).forEach((f, i) => shares[i % cores].files.push(f))
  const done = await Promise.all(shares.map((share) => new Promise<Timed>((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), {workerData: share})
    w.once('message', resolve)
    w.once('error', reject)
  })))
  // Each worker hashes on a core of its own: the slowest one's time is how long hashing it all takes.
  return {seconds: Math.max(...done.map((d) => d.seconds)), bytes: done.reduce((s, d) => s + d.bytes, 0), cores}
}

function hashShare(share: Share): Timed {
  const buffers = objectsIn(share.files)
  const start = process.hrtime.bigint()
  let bytes = 0
  for (const b of buffers) {
    hashBytes(b)
    bytes += b.length
  }
  return {seconds: seconds(start), bytes}
}

function insertFloor(files: string[]): Timed {
  const buffers = objectsIn(files)
  // In the working directory: on the disk a clone would write to.
  const dir = mkdtempSync(path.join(process.cwd(), 'tilesync-floor-'))
  try {
    const start = process.hrtime.bigint()
    const db = createDatabase(path.join(dir, 'floor.db'))
    db.pragma('journal_mode = OFF')
    db.pragma('synchronous = OFF')
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)')
    const insert = db.prepare('INSERT INTO t (data) VALUES (?)')
    let bytes = 0
    db.transaction(() => {
      for (const b of buffers) {
        insert.run(b)
        bytes += b.length
      }
    })()
    db.close()
    return {seconds: seconds(start), bytes}
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

if (isMainThread) {
  const [which, dir] = process.argv.slice(2)
  if ((which !== 'hash' && which !== 'insert') || !dir) {
    process.stderr.write('usage: node dist/src/bench/clone-floors.js hash|insert DIR\n')
    process.exit(2)
  }
  const files = filesUnder(dir)
  const result = which === 'hash' ? await hashFloor(files) : insertFloor(files)
  process.stdout.write(`${JSON.stringify({...result, files: files.length})}\n`)
} else {
  parentPort!.postMessage(hashShare(workerData as Share))
}
