/**
 * Runs jobs that each hold some bytes while they run, in the order they were asked for, with
 * at most `maxJobs` at once and the bytes of those running within `maxBytes`. A job larger
 * than the whole budget still runs, alone, so nothing waits forever. Where a count limit alone
 * (p-limit) would let 64 large blobs be read at once, this keeps memory bounded by bytes.
 */
export type ByteBudget = <T>(bytes: number, job: () => Promise<T>) => Promise<T>

export function byteBudget(maxBytes: number, maxJobs: number): ByteBudget {
  let running = 0
  let held = 0
  // A queue read from `head`: Array.shift() moves every element, and a clone queues one job
  // per blob (tens of thousands for a city).
  const waiting: Array<{bytes: number; start: () => void}> = []
  let head = 0
  const fits = (bytes: number): boolean => running === 0 || (running < maxJobs && held + bytes <= maxBytes)
  // A job's place is taken when it is let in, not when it gets to run (a tick later), so
  // one release cannot let in more than fits.
  const take = (bytes: number): void => {
    running++
    held += bytes
  }
  // First come, first served: a large job at the head is not overtaken by smaller ones.
  const startWaiting = (): void => {
    while (head < waiting.length && fits(waiting[head].bytes)) {
      const next = waiting[head++]
      take(next.bytes)
      next.start()
    }
    if (head === waiting.length) {
      waiting.length = 0
      head = 0
    }
  }
  return async <T>(bytes: number, job: () => Promise<T>): Promise<T> => {
    if (head < waiting.length || !fits(bytes)) await new Promise<void>((start) => waiting.push({bytes, start}))
    else take(bytes)
    try {
      return await job()
    } finally {
      running--
      held -= bytes
      startWaiting()
    }
  }
}
