import * as fs from 'node:fs'
import * as path from 'node:path'

import type {ImageSignature} from './image-signature.js'
import type {SignatureIndex} from './signature-index.js'
import {encodeRecord, RECORD_BYTES, recordChecks} from './signature-record.js'

export {RECORD_BYTES} from './signature-record.js'

export type StoredSignature = ImageSignature | null

export interface LoadStats {
  records: number
  /** Bytes skipped because they did not check (torn or damaged records). */
  damagedBytes: number
}

/**
 * The on-disk cache of image signatures: one append-only file of fixed 80-byte records (see
 * signature-record.ts). An object's signature never changes, so records are only ever added.
 * Appends are single O_APPEND writes of whole records, so two processes (serve warming, a
 * `similar` run) can add at once. A crash can leave a torn record, and a power loss a
 * zero-filled stretch: a record whose checksum fails is skipped by sliding one byte until
 * records check again, so the damage costs only the entries in it (computed again when next
 * needed). 100,000 images take 8 MB and load in one read.
 */
export class SignatureFile {
  /** Bytes of the file already read: everything before this point has been parsed. */
  private consumed = 0

  constructor(readonly file: string) {}

  /**
   * Reads the records added since the last call (all of them the first time) into `into`.
   * A partial record at the end (another process mid-append) is left for the next call.
   */
  readNew(into: SignatureIndex): LoadStats {
    let fd: number
    try {
      fd = fs.openSync(this.file, 'r')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {records: 0, damagedBytes: 0}
      throw error
    }
    let buf: Buffer
    try {
      const size = fs.fstatSync(fd).size
      if (size < this.consumed) this.consumed = 0 // replaced by a shorter file: read it all again
      buf = Buffer.allocUnsafe(size - this.consumed)
      let at = 0
      while (at < buf.length) {
        const n = fs.readSync(fd, buf, at, buf.length - at, this.consumed + at)
        if (n === 0) break
        at += n
      }
      buf = buf.subarray(0, at)
    } finally {
      fs.closeSync(fd)
    }
    const stats: LoadStats = {records: 0, damagedBytes: 0}
    const offsets = new Int32Array(Math.floor(buf.length / RECORD_BYTES))
    let o = 0
    let lastGood = 0
    while (o + RECORD_BYTES <= buf.length) {
      if (!recordChecks(buf, o)) {
        o++
        continue
      }
      stats.damagedBytes += o - lastGood
      offsets[stats.records++] = o
      o += RECORD_BYTES
      lastGood = o
    }
    into.addRecords(buf, offsets, stats.records)
    this.consumed += lastGood
    return stats
  }

  /** Appends records in one write. Creating the directory is the only other thing it does. */
  append(entries: Array<{id: string; signature: StoredSignature}>): void {
    if (entries.length === 0) return
    const buf = Buffer.alloc(entries.length * RECORD_BYTES)
    entries.forEach((e, i) => encodeRecord(buf, i * RECORD_BYTES, e.id, e.signature))
    fs.mkdirSync(path.dirname(this.file), {recursive: true})
    const fd = fs.openSync(this.file, 'a')
    try {
      let at = 0
      while (at < buf.length) at += fs.writeSync(fd, buf, at, buf.length - at)
    } finally {
      fs.closeSync(fd)
    }
  }
}
