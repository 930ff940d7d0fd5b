import type {SingleBar} from 'cli-progress'

export interface Progress {
  /** False when nothing is shown: callers skip work done only to size the bar. */
  readonly enabled: boolean
  start(total: number, label: string): void
  increment(n?: number): void
  stop(): void
}

const silent: Progress = {enabled: false, start() {}, increment() {}, stop() {}}

/**
 * A progress bar on stderr when stderr is a terminal, nothing otherwise, so pipes, CI logs
 * and `--json` output stay clean. cli-progress is loaded only when a bar is shown.
 */
export async function createProgress(unit = 'items'): Promise<Progress> {
  if (!process.stderr.isTTY || process.env.CI || process.env.TILESYNC_NO_PROGRESS) return silent
  const {default: cliProgress} = await import('cli-progress')
  let bar: SingleBar | undefined
  return {
    enabled: true,
    start(total, label) {
      bar = new cliProgress.SingleBar({
        stream: process.stderr,
        format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: true,
      }, cliProgress.Presets.shades_classic)
      bar.start(total, 0)
    },
    increment(n = 1) { bar?.increment(n) },
    stop() { bar?.stop() },
  }
}
