import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
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

/** Direct writes go in multiples of this, at offsets that are multiples of it. */
const DIRECT_BLOCK = 4096
const STAGE_BYTES = 8 * 1024 * 1024

/**
 * One staging buffer per thread for direct writes, aligned to what the device needs. JavaScript
 * cannot ask for aligned memory, so the alignment is found by trying: a direct write from a
 * misaligned address fails with EINVAL, and the first offset into the buffer that succeeds is
 * aligned (tried once per pack, at the pack's offset 0, which the first real write overwrites).
 */
let stageMemory: Buffer | null = null
let stageOffset = -1
/** The writer whose open pack stages in `stageMemory`: a second one on this thread writes through the page cache. */
let stageHolder: PackWriter | null = null

function alignedStage(fd: number): Buffer | null {
  stageMemory ??= Buffer.allocUnsafeSlow(STAGE_BYTES + DIRECT_BLOCK)
  const fits = (o: number): boolean => {
    try {
      fs.writeSync(fd, stageMemory!, o, DIRECT_BLOCK, 0)
      return true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EINVAL') return false
      throw error
    }
  }
  if (stageOffset < 0 || !fits(stageOffset)) {
    stageOffset = -1
    for (let o = 0; o < DIRECT_BLOCK; o += 16) {
      if (fits(o)) {
        stageOffset = o
        break
      }
    }
  }
  return stageOffset < 0 ? null : stageMemory.subarray(stageOffset, stageOffset + STAGE_BYTES)
}

/**
 * Appends objects to pack files on one thread (a hashing worker owns one). The pack is
 * written under its final name in `objects/pack/`, where it is invisible until its index is
 * renamed beside it; a pack that reaches `rotateAt` bytes is finished and its flush to disk
 * started in the background, so the durability barrier at the end has little left to wait for.
 *
 * With `direct` (the hashing workers' bulk writes), the pack is written with O_DIRECT where the
 * platform and file system allow it, through an aligned staging buffer: a first commit writes
 * the whole database's blobs, which nothing reads soon and which must reach the disk anyway.
 * Through the page cache each byte is first copied into newly allocated cache pages (most of
 * a first commit's kernel time), then flushed, and the cache pages of the user's own
 * database are evicted for them. Appended bytes then sit in the staging buffer until
 * `flushStage()` (or a full buffer, or sealing) writes them out: a caller that hands out an
 * object's place to readers calls it first. Elsewhere, writes go through the page cache as usual.
 */
export class PackWriter {
  private fd: number | null = null
  private name = ''
  private offset = 0
  private entries: PackEntry[] = []
  private readonly flushing: Array<Promise<void>> = []
  private readonly finished: FinishedPack[] = []
  private broken: Error | null = null
  /** Direct mode: the staging buffer, how much of it is filled, and the file offset it starts at. */
  private stage: Buffer | null = null
  private staged = 0
  private stageAt = 0

  constructor(
    private readonly packDir: string,
    private readonly tmpDir: string,
    private readonly options: {durable: boolean; rotateAt?: number; direct?: boolean},
  ) {}

  /** Whether the open pack is written directly (test hook: the platform may not allow it). */
  get writesDirect(): boolean {
    return this.stage !== null
  }

  /** Appends `bytes` under `id` and says where they are (readable there once flushStage() ran). */
  append(id: string, bytes: Uint8Array): PackedAt {
    // A failed write leaves the pack's tail unknown: nothing more goes into it.
    if (this.broken) throw this.broken
    if (this.fd === null) this.open()
    const at = this.offset + RECORD_HEADER
    try {
      chargeDiskWrite(bytes.length)
      if (this.stage) {
        this.put(recordHeader(id, bytes.length))
        this.put(bytes)
      } else {
        writeAll(this.fd!, recordHeader(id, bytes.length), this.offset)
        writeAll(this.fd!, bytes, at)
      }
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

  /**
   * Writes out what is staged (direct mode), so every object appended so far can be read
   * from the file. The last partial block is written padded and kept staged: the next write
   * rewrites it with what follows, and sealing cuts the file to its real length.
   */
  flushStage(): void {
    if (!this.stage || this.fd === null || this.staged === 0) return
    if (this.broken) throw this.broken
    try {
      const padded = Math.ceil(this.staged / DIRECT_BLOCK) * DIRECT_BLOCK
      writeAll(this.fd, this.stage.subarray(0, padded), this.stageAt)
      const whole = Math.floor(this.staged / DIRECT_BLOCK) * DIRECT_BLOCK
      this.stage.copyWithin(0, whole, this.staged)
      this.staged -= whole
      this.stageAt += whole
    } catch (error) {
      this.broken = error as Error
      throw error
    }
  }

  /** Copies bytes into the staging buffer, writing it out each time it fills. */
  private put(bytes: Uint8Array): void {
    const stage = this.stage!
    for (let done = 0; done < bytes.length;) {
      const n = Math.min(bytes.length - done, stage.length - this.staged)
      stage.set(bytes.subarray(done, done + n), this.staged)
      this.staged += n
      done += n
      if (this.staged === stage.length) {
        writeAll(this.fd!, stage, this.stageAt)
        this.stageAt += stage.length
        this.staged = 0
      }
    }
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
    const file = path.join(this.packDir, `${this.name}.pack`)
    this.fd = null
    this.stage = null
    if (this.options.direct && fs.constants.O_DIRECT && process.env.TILESYNC_DIRECT_IO !== '0' && (stageHolder === null || stageHolder === this)) {
      const c = fs.constants
      try {
        this.fd = fs.openSync(file, c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_DIRECT, 0o644)
        this.stage = alignedStage(this.fd)
        if (this.stage) stageHolder = this
      } catch {
        this.stage = null
      }
      if (!this.stage) {
        // This file system takes no direct writes (tmpfs, some network ones): the page cache it is.
        if (this.fd !== null) fs.closeSync(this.fd)
        fs.rmSync(file, {force: true})
        this.fd = null
      }
    }
    this.fd ??= fs.openSync(file, 'wx')
    this.entries = []
    this.staged = 0
    this.stageAt = 0
    this.offset = 0
    if (this.stage) this.put(PACK_MAGIC)
    else writeAll(this.fd, PACK_MAGIC, 0)
    this.offset = PACK_MAGIC.length
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
    if (this.stage) {
      // Everything out, then the padding of the last block cut off.
      this.flushStage()
      fs.ftruncateSync(this.fd, this.offset)
      this.releaseStage()
    }
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

  private releaseStage(): void {
    this.stage = null
    if (stageHolder === this) stageHolder = null
  }

  /** Gives up the open pack (its objects are not wanted after all): no index is written for it. */
  abandon(): void {
    this.discard()
  }

  /** After a failed write: the half-written pack has no index; remove it. */
  private discard(): void {
    if (this.fd === null) return
    fs.closeSync(this.fd)
    this.fd = null
    this.releaseStage()
    fs.rmSync(path.join(this.packDir, `${this.name}.pack`), {force: true})
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done)
}

/** A full disk while writing objects is DISK_FULL with what to do; any other failure passes through. */
export function diskFullError(error: unknown): unknown {
  const code = (error as {code?: string}).code
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return error
  return new TilesyncError('DISK_FULL', 'no space left on the disk while writing objects', {hint: 'free some disk space and run the command again; nothing was changed'})
}
