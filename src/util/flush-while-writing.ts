import * as fs from 'node:fs/promises'

/**
 * Flushes a file to disk over and over while it is being written, from the thread pool, so
 * that writeback overlaps the work that produces the bytes. Without it the kernel starts
 * writing a freshly built 1.3 GB database only when the final fdatasync asks, and the
 * command then idles for the whole writeback (RocksDB's bytes_per_sync serves the same end).
 * stop() waits for the flush in flight and says how many were made; the caller still makes
 * its own final fdatasync. `flush` is how one flush is made (tests hold one in flight).
 */
export function flushWhileWriting(file: string, pauseMs = 200, flush: (h: fs.FileHandle) => Promise<void> = (h) => h.datasync()): {stop: () => Promise<number>} {
  let stopped = false
  let flushes = 0
  let wake: (() => void) | undefined
  const loop = (async () => {
    const handle = await fs.open(file, 'r').catch(() => null)
    if (!handle) return
    try {
      while (!stopped) {
        // A failed flush here is not the caller's failure: the final fdatasync reports it.
        await flush(handle).then(() => flushes++, () => {})
        // Asked to stop during that flush: nothing will wake the pause below, and its timer
        // keeps no process alive, so waiting on it could end the process mid-command.
        if (stopped) break
        await new Promise<void>((resolve) => {
          wake = resolve
          setTimeout(resolve, pauseMs).unref()
        })
      }
    } finally {
      await handle.close()
    }
  })()
  return {
    async stop() {
      stopped = true
      wake?.()
      await loop
      return flushes
    },
  }
}
