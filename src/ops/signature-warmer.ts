import type {EnsureStats} from '../perceptual/signatures.js'
import {openSignatures} from './sign-images.js'
import {ImageReader, listTileImages} from './tile-images.js'
import type {Workspace} from '../workspace/workspace.js'

export interface SignatureWarmer {
  /** Settles once every image of the revision has a signature, or soon after stop(); null when there was nothing to do or it failed. */
  done: Promise<EnsureStats | null>
  /** Starts no new decode; what was computed is already in the cache. */
  stop(): void
}

/**
 * Fills the perceptual-hash cache for every image of a revision (default HEAD) in the
 * background, for a long-running process such as `tilesync serve`: later `similar` and
 * `diff --perceptual` runs then only read the cache. One decode at a time by default, so the
 * process stays responsive; it never throws (a failure only leaves the cache less full).
 */
export function startSignatureWarmer(ws: Workspace, options: {revision?: string; concurrency?: number} = {}): SignatureWarmer {
  const abort = new AbortController()
  const done = (async (): Promise<EnsureStats | null> => {
    const revision = options.revision ?? 'HEAD'
    if (revision === 'HEAD' && !(await ws.repo.refs.headCommit())) return null
    const state = await ws.stateOf(await ws.resolve(revision))
    const images = await listTileImages(state, ws.reader)
    if (abort.signal.aborted) return null
    const signatures = openSignatures(ws)
    const reader = new ImageReader(ws)
    try {
      const {stats} = await signatures.ensure(images.map((image) => image.id), (i) => reader.read(images[i]), {concurrency: options.concurrency ?? 1, signal: abort.signal})
      return stats
    } finally {
      reader.close()
    }
  })().catch(() => null)
  return {done, stop: () => abort.abort()}
}
