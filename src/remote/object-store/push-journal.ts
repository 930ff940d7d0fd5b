import * as fs from 'node:fs/promises'
import * as path from 'node:path'

/**
 * Ids already uploaded to a remote by a push whose ref update has not happened yet. An
 * interrupted push leaves the remote ref where it was; the next push reads this list and
 * uploads only what is still missing, without asking the remote object by object.
 */
export class PushJournal {
  private readonly done = new Set<string>()
  private pending: string[] = []
  /**
   * When the first upload it records began (written as a `# started MS` line). A prune of
   * the remote removes only objects older than its grace period, so ids recorded since are
   * still there; older ones may not be (see remote/shallow-remote.ts).
   */
  startedAt: number | null = null
  private readonly openedAt = Date.now()

  private constructor(private readonly file: string) {}

  static async open(dir: string): Promise<PushJournal> {
    await fs.mkdir(dir, {recursive: true})
    const j = new PushJournal(path.join(dir, 'uploaded'))
    const text = await fs.readFile(j.file, 'utf8').catch(() => '')
    for (const line of text.split('\n')) {
      if (/^[0-9a-f]{64}$/.test(line)) j.done.add(line)
      const started = /^# started (\d+)$/.exec(line)
      if (started) j.startedAt = Number(started[1])
    }
    // A journal without a start line (from an older tilesync) counts as started long ago.
    if (j.done.size > 0 && j.startedAt === null) j.startedAt = 0
    return j
  }

  has(id: string): boolean {
    return this.done.has(id)
  }

  get size(): number {
    return this.done.size
  }

  record(id: string): void {
    if (this.startedAt === null) {
      this.startedAt = this.openedAt
      this.pending.push(`# started ${this.startedAt}`)
    }
    this.done.add(id)
    this.pending.push(id)
  }

  /** Appends recorded ids; called between batches so a crash loses at most one batch of knowledge. */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return
    const lines = this.pending.join('\n') + '\n'
    this.pending = []
    await fs.appendFile(this.file, lines)
  }

  /** The ref now covers everything: start afresh next time. */
  async clear(): Promise<void> {
    this.done.clear()
    this.pending = []
    this.startedAt = null
    await fs.rm(this.file, {force: true})
  }
}
