/**
 * Work to undo when Ctrl-C stops the process (src/cli/interrupt.ts runs it before exiting):
 * an operation registers what it has created and not yet finished (clone: the new directory),
 * and takes it back once done. Cleanups are synchronous: they run in a signal handler, just
 * before the process exits.
 */
const cleanups = new Set<() => void>()

/** Registers `fn`; call the returned function when the work is finished (or undone otherwise). */
export function onInterrupt(fn: () => void): () => void {
  cleanups.add(fn)
  return () => {
    cleanups.delete(fn)
  }
}

/** Runs every registered cleanup once (one that fails does not stop the others); returns how many ran. */
export function runInterruptCleanups(): number {
  let ran = 0
  for (const fn of [...cleanups]) {
    ran++
    cleanups.delete(fn)
    try {
      fn()
    } catch {
      // what is left is what a failed cleanup leaves; gc or the next run deals with it
    }
  }
  return ran
}
