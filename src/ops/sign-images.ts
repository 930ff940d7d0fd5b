import type {EnsureStats} from '../perceptual/signatures.js'
import {Signatures} from '../perceptual/signatures.js'
import {createProgress} from '../util/progress.js'
import type {ImageReader, TileImage} from './tile-images.js'
import type {Workspace} from './workspace.js'

/** The repository's signature cache, loaded. */
export function openSignatures(ws: Workspace): Signatures {
  return new Signatures(ws.repo.layout.signatureCache)
}

/**
 * Makes sure every image has a signature: cached ones are looked up, the rest decoded (with a
 * progress bar on a terminal) and cached. Images whose bytes cannot be read are left out.
 */
export async function signTileImages(signatures: Signatures, images: Iterable<TileImage>, reader: ImageReader, options: {signal?: AbortSignal; concurrency?: number} = {}): Promise<EnsureStats> {
  const progress = await createProgress('images')
  try {
    const sources = (function* () {
      for (const image of images) yield {id: image.id, read: () => reader.read(image)}
    })()
    return await signatures.ensure(sources, {
      ...options,
      onStart: (n) => progress.start(n, 'perceptual hashes'),
      onDecoded: () => progress.increment(),
    })
  } finally {
    progress.stop()
  }
}
