import {expect} from 'chai'

import {ViewerApi} from '../src/viewer/viewer-api.js'
import type {BuildStatus, PyramidIndex} from '../src/viewer/web/protocol.js'
import {makeViewerRepo, type ViewerRepo} from './support/browser.js'
import {setGeneration} from './support/edit.js'
import {imagesOver, leavesOf, madeBetween, timesLayers} from './support/pyramid-counts.js'

function json<T>(reply: Awaited<ReturnType<ViewerApi['call']>>): T {
  if (!('json' in reply)) throw new Error('expected JSON')
  return JSON.parse(reply.json) as T
}

/** One image per zoom from -4 out to the coarsest, for each layer: what a change inside one leaf remakes. */
function onePerZoom(index: PyramidIndex): Record<string, number> {
  return Object.fromEntries(index.levels.map((l) => [String(l.zoom), index.layers.length]))
}

describe('tile pyramid: each image made once, remade only where a revision changed', function () {
  this.timeout(120_000)
  let repo: ViewerRepo
  let api: ViewerApi

  before(async () => {
    repo = await makeViewerRepo()
    api = new ViewerApi(repo.ws)
  })
  after(() => api?.close())

  it('a full build makes every image of the index once per layer; again, or by a new server on the same cache, none', async () => {
    const index = json<PyramidIndex>(await api.call('pyramidIndex', ['HEAD~2']))
    const planned = index.levels.reduce((n, l) => n + l.images.length, 0)
    const status = json<BuildStatus>(await api.call('build', ['HEAD~2']))
    const perZoom = Object.fromEntries(index.levels.map((l) => [String(l.zoom), l.images.length * index.layers.length]))
    expect(status.made.byZoom).to.deep.equal(perZoom)
    expect(status.made.total).to.equal(planned * 2)
    expect(status.jobs.map((j) => [j.layer, j.state, j.done, j.planned])).to.deep.equal([['generation', 'done', planned, planned], ['render', 'done', planned, planned]])
    // The tiles' distinct images, each decoded once for both layers.
    const tiles = json<{tiles: Array<[number, number, Record<string, string | null>]>}>(await api.call('tiles', ['HEAD~2', [-20, -20, 20, 20]]))
    const distinct = new Set(tiles.tiles.flatMap(([, , ids]) => Object.values(ids).filter((v): v is string => v !== null)))
    expect(status.made.cells).to.equal(distinct.size)

    const again = json<BuildStatus>(await api.call('build', ['HEAD~2']))
    expect(again.made.total).to.equal(status.made.total)
    const fresh = new ViewerApi(repo.ws)
    try {
      const s = json<BuildStatus>(await fresh.call('build', ['HEAD~2']))
      expect(s.made).to.deep.equal({total: 0, byZoom: {}, cells: 0})
    } finally {
      fresh.close()
    }
  })

  it('the next commit remakes only the images over the leaves it changed, decoding only its new images', async () => {
    const before = json<BuildStatus>(await api.call('pyramidStatus', []))
    const index = json<PyramidIndex>(await api.call('pyramidIndex', ['HEAD~1']))
    await api.call('build', ['HEAD~1'])
    const after = json<BuildStatus>(await api.call('pyramidStatus', []))
    const diff = json<{changes: {tiles: Array<{x: number; y: number; status: string; layers: Array<{new: {id: string} | null}>}>}}>(await api.call('diff', ['HEAD~2', 'HEAD~1']))
    const leaves = leavesOf(diff.changes.tiles.map((t) => [t.x, t.y]))
    // -5,-3 is in leaf (-1,-1); 0,0 1,0 2,2 10,5 and 13,0 in (0,0): two leaves of four, in two level-1 nodes.
    expect(leaves.map((l) => l.join(',')).sort()).to.deep.equal(['-1,-1', '0,0'])
    expect(madeBetween(before, after)).to.deep.equal(timesLayers(imagesOver(leaves, index), 2))
    const fresh = new Set(diff.changes.tiles.flatMap((t) => t.layers.map((l) => l.new?.id)).filter((id): id is string => id !== undefined))
    expect(after.made.cells - before.made.cells).to.equal(fresh.size)
  })

  it('the working database: an uncommitted change remakes only the images over its leaf, and its index follows the file', async () => {
    await api.call('build', ['HEAD'])
    const before = json<BuildStatus>(await api.call('pyramidStatus', []))
    // The fixture's working database differs from HEAD at 0,0 and 14,1: both in leaf (0,0).
    const index = json<PyramidIndex>(await api.call('pyramidIndex', ['working']))
    expect(index.revision).to.equal('working')
    await api.call('build', ['working'])
    const after = json<BuildStatus>(await api.call('pyramidStatus', []))
    expect(madeBetween(before, after)).to.deep.equal(onePerZoom(index))
    // Another change, in leaf (-1,-1): the working database's index changes with the file, and only that region is remade.
    setGeneration(repo.db, -5, -3, 301)
    const changedIndex = json<PyramidIndex>(await api.call('pyramidIndex', ['working']))
    expect(changedIndex.levels[0].images).not.to.deep.equal(index.levels[0].images)
    await api.call('build', ['working'])
    const last = json<BuildStatus>(await api.call('pyramidStatus', []))
    expect(madeBetween(after, last)).to.deep.equal(onePerZoom(changedIndex))
    expect(last.made.cells - after.made.cells).to.equal(1)
  })

  it('images inside a leaf (zoom -3..-1) are made when asked for, once', async () => {
    const index = json<PyramidIndex>(await api.call('pyramidIndex', ['HEAD']))
    const leaf = index.levels[0].images[0][2]
    const before = json<BuildStatus>(await api.call('pyramidStatus', []))
    for (const zoom of [-1, -2, -3]) {
      const a = await api.call('pyramidPart', ['generation', zoom, leaf, 0, 0])
      const b = await api.call('pyramidPart', ['generation', zoom, leaf, 0, 0])
      expect('bytes' in a && 'bytes' in b && a.bytes.equals(b.bytes)).to.equal(true)
    }
    const after = json<BuildStatus>(await api.call('pyramidStatus', []))
    expect(madeBetween(before, after)).to.deep.equal({'-1': 1, '-2': 1, '-3': 1})
  })
})
