import {parentPort, workerData} from 'node:worker_threads'

import {Workspace} from '../../workspace/workspace.js'
import {ViewerApi} from '../viewer-api.js'
import {type CallMessage, serializeError, type WorkerMessage} from './messages.js'

/**
 * The worker thread of `tilesync serve`: one ViewerApi over the repository, answering the
 * HTTP thread's calls. Reading history, scanning the working database and making map images
 * all happen here, so the HTTP thread stays free to answer and to stop at once.
 */
const port = parentPort
if (!port) throw new Error('viewer-worker.js runs as a worker thread of `tilesync serve`')

const post = (message: WorkerMessage, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer)

try {
  const {root, concurrency} = workerData as {root: string; concurrency?: number}
  const api = new ViewerApi(await Workspace.open(root), {concurrency})
  port.on('message', (message: CallMessage) => {
    api.call(message.method, message.args).then(
      (reply) => {
        if ('json' in reply) {
          post({kind: 'reply', id: message.id, json: reply.json})
          return
        }
        // A copy the worker gives away: buffers from sharp or the store may share memory.
        const bytes = new Uint8Array(reply.bytes.length)
        bytes.set(reply.bytes)
        post({kind: 'reply', id: message.id, bytes, type: reply.type}, [bytes.buffer])
      },
      (error: unknown) => post({kind: 'error', id: message.id, error: serializeError(error)}),
    )
  })
  post({kind: 'ready'})
} catch (error) {
  post({kind: 'fatal', error: serializeError(error)})
}
