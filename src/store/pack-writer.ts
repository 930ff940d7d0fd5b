import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {chargeDiskWrite} from '../util/fault.js'
import {encodeIndex, PACK_MAGIC, type PackEntry, RECORD_HEADER, recordHeader} from './pack-format.js'

export interface PackedAt {
  pack: string
  offset: number
  length: number
}

export interface FinishedPack {
  name: string
  count: number
  bytes: number
}

/**
 * Appends objects to pack files on one thread (a hashing worker owns one). The pack is
 * written under its final name in `objects/pack/`, where it is invisible until its index is
 * renamed beside it; a pack that reaches `rotateAt` bytes is finished and its flush to disk
 * started in the background, so the durability barrier at the end has little left to wait for.
 */
export class PackWriter {
  private fd: number | null = null
  private name = ''
  private offset = 0
  private entries: PackEntry[] = []
  private readonly flushing: Array<Promise<void>> = []
  private readonly finished: FinishedPack[] = []
  private broken: Error | null = null

  constructor(
    private readonly packDir: string,
    private readonly tmpDir: string,
    private readonly options: {durable: boolean; rotateAt?: number},
  ) {}

  /** Appends `bytes` under `id` and says where they are. */
  append(id: string, bytes: Uint8Array): PackedAt {
    // A failed write leaves the pack's tail unknown: nothing more goes into it.
    if (this.broken) throw this.broken
    if (this.fd === null) this.open()
    const at = this.offset + RECORD_HEADER
    try {
      chargeDiskWrite(bytes.length)
      writeAll(this.fd!, recordHeader(id, bytes.length), this.offset)
      writeAll(this.fd!, bytes, at)
    } catch (error) {
      this.broken = error as Error
      throw error
    }
    this.offset = at + bytes.length
    this.entries.push({id, offset: at, length: bytes.length})
    const placed = {pack: this.name, offset: at, length: bytes.length}
    if (this.offset >= (this.options.rotateAt ?? 128 * 1024 * 1024)) this.seal()
    return placed
  }

  /** Finishes the open pack and waits for background flushes; returns every pack made. */
  async finish(): Promise<FinishedPack[]> {
    if (this.broken) {
      this.discard()
      throw this.broken
    }
    this.seal()
    await Promise.all(this.flushing)
    return [...this.finished].sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  private open(): void {
    fs.mkdirSync(this.packDir, {recursive: true})
    this.name = `pack-${randomBytes(12).toString('hex')}`
    this.fd = fs.openSync(path.join(this.packDir, `${this.name}.pack`), 'wx')
    writeAll(this.fd, PACK_MAGIC, 0)
    this.offset = PACK_MAGIC.length
    this.entries = []
  }

  /**
   * Finishes the open pack: its bytes are flushed first and only then is the index written
   * (temp file, then rename), so an index never describes bytes that a power cut could lose.
   * The index is flushed before its rename too: gc removes the packs a merge replaced right
   * after the merge, with no barrier in between, and a new index lost to a power cut (a
   * renamed file whose bytes never reached the disk reads back empty) would leave the merged
   * objects in a pack nothing indexes.
   * The flush runs in the background while the next pack fills.
   */
  private seal(): void {
    if (this.fd === null) return
    const fd = this.fd
    const {name, entries, offset} = this
    this.fd = null
    const durable = this.options.durable
    const sealed = (async () => {
      try {
        if (durable) await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())))
      } finally {
        await new Promise<void>((resolve) => fs.close(fd, () => resolve()))
      }
      const tmp = path.join(this.tmpDir, `${name}.idx.${process.pid}.tmp`)
      await fs.promises.writeFile(tmp, encodeIndex(entries), durable ? {flush: true} : {})
      await fs.promises.rename(tmp, path.join(this.packDir, `${name}.idx`))
      this.finished.push({name, count: entries.length, bytes: offset})
    })()
    // Awaited by finish(); until then a failure must not count as unhandled.
    sealed.catch(() => {})
    this.flushing.push(sealed)
  }

  /** After a failed write: the half-written pack has no index; remove it. */
  private discard(): void {
    if (this.fd === null) return
    fs.closeSync(this.fd)
    this.fd = null
    fs.rmSync(path.join(this.packDir, `${this.name}.pack`), {force: true})
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done)
}
