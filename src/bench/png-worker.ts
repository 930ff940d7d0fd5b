import {parentPort} from 'node:worker_threads'

import {makeTilePng} from '../sample/tile-png.js'

// Encodes tiles for the benchmark generator on another core.
parentPort!.on('message', (job: {id: number; size: number; seed: number; noise: number}) => {
  const png = makeTilePng(job.size, job.seed, job.noise)
  parentPort!.postMessage({id: job.id, png}, [png.buffer as ArrayBuffer])
})
