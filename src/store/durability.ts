import {execFile} from 'node:child_process'
import * as fs from 'node:fs/promises'

/**
 * Objects are written without a flush each; before anything may point at them (a ref
 * update), one barrier makes them durable. On Linux that is a single syncfs (`sync -f`),
 * which costs one journal commit instead of one per object; elsewhere each written file
 * is fsynced.
 */
export class DurabilityBarrier {
  private dirty: string[] = []
  private anyDirty = false
  private syncfsWorks: boolean | undefined

  constructor(private readonly fsRoot: string, private readonly enabled: boolean) {}

  written(file: string): void {
    this.anyDirty = true
    if (this.syncfsWorks !== true) this.dirty.push(file)
  }

  async flush(): Promise<void> {
    if (!this.enabled || !this.anyDirty) return
    const files = this.dirty
    this.dirty = []
    this.anyDirty = false
    if (this.syncfsWorks !== false && process.platform === 'linux') {
      this.syncfsWorks = await new Promise<boolean>((resolve) => {
        execFile('sync', ['-f', this.fsRoot], {timeout: 600_000}, (error) => resolve(!error))
      })
      if (this.syncfsWorks) return
    }
    for (const f of files) {
      const h = await fs.open(f, 'r').catch(() => null)
      if (!h) continue
      await h.datasync().catch(() => {})
      await h.close()
    }
  }
}

/**
 * Makes a directory's entries durable (new names, removals). Where the platform cannot open
 * a directory for syncing (Windows), the rename is left to the file system's own ordering.
 */
export async function syncDirectory(dir: string): Promise<void> {
  const h = await fs.open(dir, 'r').catch(() => null)
  if (!h) return
  try {
    await h.sync().catch(() => {})
  } finally {
    await h.close()
  }
}
