import {existsSync, mkdirSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import * as path from 'node:path'
import {parentPort, workerData} from 'node:worker_threads'

import {hashBytes} from '../core/hash.js'
import {chargeDiskWrite} from './fault.js'

/**
 * Hashes blobs (and, when asked, stores them as objects) on another core. Synchronous file
 * writes are fine here: they block this worker, not the thread reading the database.
 */
const {objectsDir, tmpDir} = workerData as {objectsDir: string; tmpDir: string}
const madeDirs = new Set<string>()
let tmpCounter = 0

parentPort!.on('message', (job: {seq: number; bytes: Uint8Array; store: boolean; expect?: string}) => {
  try {
    const id = hashBytes(job.bytes)
    let wrote = false
    // A download whose bytes do not match the id it was fetched under is never stored.
    if (job.store && (job.expect === undefined || job.expect === id)) {
      const dir = path.join(objectsDir, id.slice(0, 2))
      const target = path.join(dir, id.slice(2))
      if (!existsSync(target)) {
        if (!madeDirs.has(dir)) {
          mkdirSync(dir, {recursive: true})
          madeDirs.add(dir)
        }
        const tmp = path.join(tmpDir, `${id.slice(0, 16)}.${process.pid}.w${tmpCounter++}.tmp`)
        try {
          chargeDiskWrite(job.bytes.length)
          writeFileSync(tmp, job.bytes, {flag: 'wx'})
          renameSync(tmp, target)
        } catch (error) {
          rmSync(tmp, {force: true})
          throw error
        }
        wrote = true
      }
    }
    parentPort!.postMessage({seq: job.seq, id, wrote})
  } catch (error) {
    const e = error as NodeJS.ErrnoException
    parentPort!.postMessage({seq: job.seq, error: {message: e.message, code: e.code}})
  }
})
