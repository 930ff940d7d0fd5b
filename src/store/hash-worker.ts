import {existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import * as path from 'node:path'
import {parentPort, workerData} from 'node:worker_threads'

import {hashBytes} from '../core/hash.js'
import {chargeDiskWrite} from '../util/fault.js'
import {decodeIndex, PACK_NAME} from './pack-format.js'
import {type PackedAt, PackWriter} from './pack-writer.js'

/**
 * Hashes blobs (and, when asked, stores them as objects) on another core. Synchronous file
 * writes are fine here: they block this worker, not the thread reading the database.
 *
 * In packed mode the first few new objects are written loose and the rest appended to this
 * worker's pack files: a bulk write then creates a handful of files, while a command that
 * finds only a few new blobs leaves no tiny packs behind.
 */
const {objectsDir, tmpDir, packed, durable} = workerData as {objectsDir: string; tmpDir: string; packed: boolean; durable: boolean}
const LOOSE_FIRST = 8
const madeDirs = new Set<string>()
const writtenHere = new Set<string>()
let tmpCounter = 0
let looseWritten = 0
let writer: PackWriter | null = null
let inPacks: Set<string> | null = null

interface Job {
  seq: number
  bytes: Uint8Array
  store: boolean
  expect?: string
}

/** Ids already in finished packs, read once: a packed object is never written again. */
function packedIds(): Set<string> {
  if (inPacks) return inPacks
  inPacks = new Set()
  const dir = path.join(objectsDir, 'pack')
  let names: string[] = []
  try {
    names = readdirSync(dir)
  } catch {
    return inPacks
  }
  for (const f of names) {
    if (!f.endsWith('.idx') || !PACK_NAME.test(f.slice(0, -4))) continue
    try {
      for (const e of decodeIndex(readFileSync(path.join(dir, f)))) inPacks.add(e.id)
    } catch {
      // A damaged index hides its objects; storing them again is the safe side.
    }
  }
  return inPacks
}

function writeLoose(id: string, bytes: Uint8Array): void {
  const dir = path.join(objectsDir, id.slice(0, 2))
  if (!madeDirs.has(dir)) {
    mkdirSync(dir, {recursive: true})
    madeDirs.add(dir)
  }
  const tmp = path.join(tmpDir, `${id.slice(0, 16)}.${process.pid}.w${tmpCounter++}.tmp`)
  try {
    chargeDiskWrite(bytes.length)
    writeFileSync(tmp, bytes, {flag: 'wx'})
    renameSync(tmp, path.join(dir, id.slice(2)))
  } catch (error) {
    rmSync(tmp, {force: true})
    throw error
  }
}

function store(id: string, bytes: Uint8Array): {wrote: boolean; at?: PackedAt} {
  if (writtenHere.has(id) || existsSync(path.join(objectsDir, id.slice(0, 2), id.slice(2)))) return {wrote: false}
  if (packed && packedIds().has(id)) return {wrote: false}
  writtenHere.add(id)
  try {
    if (!packed || looseWritten < LOOSE_FIRST) {
      writeLoose(id, bytes)
      looseWritten++
      return {wrote: true}
    }
    writer ??= new PackWriter(path.join(objectsDir, 'pack'), tmpDir, {durable})
    return {wrote: true, at: writer.append(id, bytes)}
  } catch (error) {
    writtenHere.delete(id)
    throw error
  }
}

/**
 * Hard-links `source` (a directory remote's object file) into the store as `expect`, checking
 * its bytes first; the link is made under a temp name and renamed into place only when they
 * match. `linked: false` means no link could be made (the caller copies instead).
 */
async function link(source: string, expect: string): Promise<{linked: boolean; id?: string; size?: number; wrote?: boolean}> {
  const tmp = path.join(tmpDir, `${expect.slice(0, 16)}.${process.pid}.w${tmpCounter++}.link`)
  try {
    linkSync(source, tmp)
  } catch {
    return {linked: false}
  }
  try {
    // link() does not follow a symlink: a remote that planted one gets it copied, not linked.
    if (!lstatSync(tmp).isFile()) return {linked: false}
    // Read on the thread pool, not here: the links queued on this worker then read from disk
    // together while this thread hashes whichever arrived first. A remote that is not in the
    // page cache was otherwise read one file at a time per worker.
    const bytes = await readFile(tmp)
    const id = hashBytes(bytes)
    if (id !== expect) return {linked: true, id, size: bytes.length, wrote: false}
    const dir = path.join(objectsDir, id.slice(0, 2))
    if (!madeDirs.has(dir)) {
      mkdirSync(dir, {recursive: true})
      madeDirs.add(dir)
    }
    renameSync(tmp, path.join(dir, id.slice(2)))
    return {linked: true, id, size: bytes.length, wrote: true}
  } finally {
    rmSync(tmp, {force: true})
  }
}

function fail(seq: number, error: unknown): void {
  const e = error as NodeJS.ErrnoException
  parentPort!.postMessage({seq, error: {message: e.message, code: e.code}})
}

parentPort!.on('message', (job: Job | {finish: true; seq: number} | {seq: number; link: string; expect: string}) => {
  if ('link' in job) {
    link(job.link, job.expect).then((r) => parentPort!.postMessage({seq: job.seq, ...r}), (error: unknown) => fail(job.seq, error))
    return
  }
  if ('finish' in job) {
    const done = writer ? writer.finish() : Promise.resolve([])
    done.then((packs) => parentPort!.postMessage({seq: job.seq, packs}), (error: unknown) => fail(job.seq, error))
    return
  }
  try {
    const id = hashBytes(job.bytes)
    // A download whose bytes do not match the id it was fetched under is never stored.
    const result = job.store && (job.expect === undefined || job.expect === id) ? store(id, job.bytes) : {wrote: false}
    parentPort!.postMessage({seq: job.seq, id, ...result})
  } catch (error) {
    fail(job.seq, error)
  }
})
