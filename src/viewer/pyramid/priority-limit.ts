/**
 * Runs at most `concurrency` jobs at once, the most urgent first: an image a page is waiting
 * for goes ahead of the background build of a whole map, without stopping it.
 */
export type Priority = 'now' | 'background'

export class PriorityLimit {
  private active = 0
  private readonly queues: Record<Priority, Array<() => void>> = {now: [], background: []}
  private readonly heads: Record<Priority, number> = {now: 0, background: 0}

  constructor(readonly concurrency: number) {}

  run<T>(priority: Priority, job: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        this.active++
        job().then(resolve, reject).finally(() => {
          this.active--
          this.next()
        })
      }
      this.queues[priority].push(start)
      this.next()
    })
  }

  /** Jobs waiting for a slot. */
  get pending(): number {
    return this.size('now') + this.size('background')
  }

  private size(p: Priority): number {
    return this.queues[p].length - this.heads[p]
  }

  private next(): void {
    while (this.active < this.concurrency) {
      const p: Priority | null = this.size('now') > 0 ? 'now' : this.size('background') > 0 ? 'background' : null
      if (!p) return
      // Read from a moving head (Array.shift would move every waiting job); compact now and then.
      const start = this.queues[p][this.heads[p]++]
      if (this.heads[p] > 1024 && this.heads[p] * 2 > this.queues[p].length) {
        this.queues[p] = this.queues[p].slice(this.heads[p])
        this.heads[p] = 0
      }
      start()
    }
  }
}
