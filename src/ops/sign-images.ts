import type {EnsureStats} from '../perceptual/signatures.js'
import {Signatures} from '../perceptual/signatures.js'
import {createProgress} from '../util/progress.js'
import type {ImageReader, TileImage} from './tile-images.js'
import type {Workspace} from '../workspace/workspace.js'

/** The repository's signature cache, loaded. */
export function openSignatures(ws: Workspace): Signatures {
  return new Signatures(ws.repo.layout.signatureCache)
}

/**
 * Makes sure every image has a signature: cached ones are looked up, the rest decoded (with a
 * progress bar on a terminal) and cached. Images whose bytes cannot be read are left out.
 */
export async function signTileImages(signatures: Signatures, images: readonly TileImage[], reader: ImageReader, options: {signal?: AbortSignal; concurrency?: number} = {}): Promise<{stats: EnsureStats; slots: Int32Array}> {
  const progress = await createProgress('images')
  try {
    return await signatures.ensure(images.map((image) => image.id), (i) => reader.read(images[i]), {
      ...options,
      onStart: (n) => progress.start(n, 'perceptual hashes'),
      onDecoded: () => progress.increment(),
    })
  } finally {
    progress.stop()
  }
}
