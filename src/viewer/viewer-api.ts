import * as path from 'node:path'

import {TilesyncError} from '../core/errors.js'
import type {Workspace} from '../workspace/workspace.js'
import type {BBox} from '../snapshot/tree-reader.js'
import {isPng} from './images.js'
import {PyramidBuilder} from './pyramid/builder.js'
import {PyramidCache} from './pyramid/pyramid-cache.js'
import {RepoView} from './repo-view.js'
import {startSignatureWarmer} from '../ops/signature-warmer.js'

/** An answer: a JSON document (already serialised), or bytes of a content type. */
export type ApiReply = {json: string} | {bytes: Buffer; type: string}

/** Where the pyramid's images are kept. */
export function pyramidCacheFile(ws: Workspace): string {
  return path.join(ws.repo.layout.dir, 'cache', 'pyramid.db')
}

function json(data: unknown): ApiReply {
  return {json: JSON.stringify(data, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}
}

/**
 * Everything the viewer's server asks of a repository, by method name, with arguments the
 * HTTP layer has already checked. `serve` runs one of these in a worker thread
 * (viewer-worker.ts), so reading history, scanning the working database and making images
 * never hold up the thread that answers requests; tests and the bench can use one directly.
 */
export class ViewerApi {
  readonly view: RepoView
  readonly pyramid: PyramidBuilder
  readonly cache: PyramidCache

  constructor(readonly ws: Workspace, options: {concurrency?: number} = {}) {
    this.view = new RepoView(ws)
    this.cache = PyramidCache.openForWriting(pyramidCacheFile(ws))
    this.pyramid = new PyramidBuilder(this.view, this.cache, {concurrency: options.concurrency})
  }

  private readonly warmers = new Set<{stop(): void}>()

  close(): void {
    for (const w of this.warmers) w.stop()
    this.view.close()
    this.cache.close()
  }

  async call(method: string, args: unknown[]): Promise<ApiReply> {
    const s = (i: number): string => String(args[i])
    const n = (i: number): number => Number(args[i])
    switch (method) {
      case 'refs': return json(await this.view.refs())
      case 'log': {
        const rev = args[0] === undefined || args[0] === null ? undefined : s(0)
        if (rev === undefined && !(await this.ws.repo.refs.headCommit())) return json({commits: []})
        return json({commits: await this.view.log(rev, n(1))})
      }
      case 'diff': return json(await this.view.diff(s(0), s(1)))
      case 'perceptual': return json(await this.view.perceptual(s(0), s(1)))
      case 'warmSignatures': {
        // Later `similar` and `diff --perceptual` runs, and the compare view, then only read the cache.
        const warmer = startSignatureWarmer(this.ws, {revision: s(0)})
        this.warmers.add(warmer)
        try {
          return json(await warmer.done)
        } finally {
          this.warmers.delete(warmer)
        }
      }
      case 'tiles': return json(await this.view.tiles(s(0), args[1] as BBox))
      case 'tileHistory': return json(await this.view.tileHistory(s(0), n(1), n(2)))
      case 'knows': return json(await this.view.knows(s(0)))
      case 'object': {
        const bytes = await this.known(s(0))
        if (!isPng(bytes)) throw new TilesyncError('OBJECT_MISSING', `object ${s(0)} is not a PNG image`)
        return {bytes, type: 'image/png'}
      }
      case 'thumb': {
        await this.known(s(0))
        return {bytes: await this.view.thumbnail(s(0), n(1)), type: 'image/webp'}
      }
      case 'pyramidIndex': {
        const index = await this.pyramid.index(s(0))
        // Whoever looks at a map will look around it: make the rest of it in the background.
        void this.pyramid.build(s(0), args[1] ? [s(1)] : undefined).catch(() => {})
        return json(index)
      }
      case 'pyramidImage': return {bytes: await this.pyramid.image(s(0), n(1), s(2)), type: 'image/webp'}
      case 'pyramidPart': return {bytes: await this.pyramid.leafPart(s(0), n(1), s(2), n(3), n(4)), type: 'image/webp'}
      case 'pyramidTile': return {bytes: await this.pyramid.tilePng(s(0), s(1), n(2), n(3)), type: 'image/png'}
      case 'pyramidStatus': return json(this.pyramid.status())
      case 'build': {
        await this.pyramid.build(s(0))
        return json(this.pyramid.status())
      }
      default: throw new TilesyncError('BAD_ARGUMENT', `no viewer method ${method}`)
    }
  }

  private async known(id: string): Promise<Buffer> {
    if (!(await this.view.knows(id))) throw new TilesyncError('OBJECT_MISSING', `no object ${id}`)
    return this.view.blob(id)
  }
}
