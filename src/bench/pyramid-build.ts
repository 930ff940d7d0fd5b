/**
 * `node dist/src/bench/pyramid-build.js PROJECT REV [--cold]`: builds REV's map pyramid in
 * this process, as `serve`'s worker does, and prints what it made and how long the build
 * itself took (JSON). With --cold the pyramid cache is emptied first. Run by the bench's
 * viewer case, one process per sample.
 */
import * as fs from 'node:fs'

import {pyramidCacheFile, ViewerApi} from '../viewer/viewer-api.js'
import {Workspace} from '../workspace/workspace.js'

const [dir, rev = 'HEAD'] = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const ws = await Workspace.open(dir)
if (process.argv.includes('--cold')) for (const f of ['', '-wal', '-shm']) fs.rmSync(pyramidCacheFile(ws) + f, {force: true})
const api = new ViewerApi(ws)
const start = process.hrtime.bigint()
await api.pyramid.build(rev)
const seconds = Number(process.hrtime.bigint() - start) / 1e9
const index = await api.pyramid.index(rev)
const status = api.pyramid.status()
api.close()
process.stdout.write(JSON.stringify({seconds, made: status.made.total, byZoom: status.made.byZoom, cells: status.made.cells, planned: index.levels.reduce((n, l) => n + l.images.length, 0) * index.layers.length}) + '\n')
