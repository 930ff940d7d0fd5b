/**
 * Work to undo when Ctrl-C stops the process (src/cli/interrupt.ts runs it before exiting):
 * an operation registers what it has created and not yet finished (clone: the new directory),
 * and takes it back once done. Cleanups are synchronous: they run in a signal handler, just
 * before the process exits.
 */
type Cleanup = () => boolean | void

const cleanups = new Set<Cleanup>()
/** Cleanups already run: run again until nothing is left, as threads still writing may add files back. */
const ran: Cleanup[] = []

/**
 * Registers `fn` (true when it removed something); call the returned function when the work
 * is finished (or undone otherwise).
 */
export function onInterrupt(fn: Cleanup): () => void {
  cleanups.add(fn)
  return () => {
    cleanups.delete(fn)
  }
}

/** Runs every registered cleanup once (one that fails does not stop the others); returns how many ran. */
export function runInterruptCleanups(): number {
  let count = 0
  for (const fn of [...cleanups]) {
    count++
    cleanups.delete(fn)
    ran.push(fn)
    try {
      fn()
    } catch {
      // what is left is what a failed cleanup leaves; gc or the next run deals with it
    }
  }
  return count
}

/** Runs the cleanups that already ran once more; returns how many removed something. */
export function repeatInterruptCleanups(): number {
  let removed = 0
  for (const fn of ran) {
    try {
      if (fn()) removed++
    } catch {
      // as above
    }
  }
  return removed
}
