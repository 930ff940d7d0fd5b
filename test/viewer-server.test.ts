import {expect} from 'chai'
import {spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as path from 'node:path'

import sharp from 'sharp'

import {hashBytes} from '../src/core/hash.js'
import type {ChangeSet} from '../src/snapshot/change-set.js'
import {RepoView, type TileHistory} from '../src/viewer/repo-view.js'
import type {PyramidIndex} from '../src/viewer/web/protocol.js'
import {hostWarning, isLoopback, type RunningServer, startServer} from '../src/viewer/server.js'
import {BIN, cliJson} from './support/cli.js'
import {makeViewerRepo, type ViewerRepo} from './support/browser.js'

/** A request exactly as written: no URL normalisation on the way (unlike fetch). */
function rawRequest(port: number, method: string, rawPath: string, headers: Record<string, string> = {}): Promise<{status: number; headers: http.IncomingHttpHeaders; body: Buffer}> {
  return new Promise((resolve, reject) => {
    const req = http.request({host: '127.0.0.1', port, method, path: rawPath, headers: {Host: `127.0.0.1:${port}`, ...headers}}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks)}))
    })
    req.on('error', reject)
    req.end()
  })
}


describe('viewer server: data, caching and security', function () {
  this.timeout(120_000)
  let repo: ViewerRepo
  let server: RunningServer
  let base: string
  const get = async (p: string, init?: RequestInit): Promise<Response> => fetch(base + p, init)
  const getJson = async <T>(p: string): Promise<T> => {
    const r = await get(p)
    expect(r.status, `${p}: ${r.status}`).to.equal(200)
    return (await r.json()) as T
  }

  /** The leaves of a revision's tile table as [lx, ly, node id], read from the tree itself. */
  const leafIds = async (rev: string): Promise<Array<[number, number, string]>> => {
    const side = rev === 'working' ? await new RepoView(repo.ws).side('working') : {state: await repo.ws.stateOf(await repo.ws.resolve(rev)), reader: repo.ws.reader}
    const table = side.state.tables.get(side.state.snapshot.tileTable!)!
    const out: Array<[number, number, string]> = []
    for (const mid of await side.reader.innerEntries(table.root)) {
      for (const leaf of await side.reader.innerEntries(mid.id)) {
        const [lx, ly] = leaf.label.split(',').map(Number)
        out.push([lx, ly, leaf.id])
      }
    }
    return out
  }

  before(async () => {
    repo = await makeViewerRepo()
    server = await startServer(repo.ws, {port: 0, warm: false})
    base = server.url.replace(/\/$/, '')
  })
  after(async () => server?.close())

  it('listens on 127.0.0.1 by default and warns about any other host', async () => {
    expect(server.host).to.equal('127.0.0.1')
    expect(server.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/)
    expect(hostWarning('127.0.0.1')).to.equal(null)
    expect(hostWarning('localhost')).to.equal(null)
    expect(hostWarning('::1')).to.equal(null)
    expect(hostWarning('0.0.0.0')).to.match(/anyone who can reach this machine/)
    expect(hostWarning('192.168.1.20')).to.match(/192\.168\.1\.20/)
    expect(isLoopback('127.0.0.5')).to.equal(true)
  })

  it('the pyramid index of each revision and of the working database: its leaves, exact bounds, one image at the coarsest zoom', async () => {
    for (const [rev, id] of [['HEAD~2', repo.commits[0]], ['HEAD~1', repo.commits[1]], ['HEAD', repo.commits[2]], ['working', 'working']]) {
      const index = await getJson<PyramidIndex>(`/api/pyramid?rev=${encodeURIComponent(rev)}`)
      expect(index.revision).to.equal(id)
      expect(index.layers).to.deep.equal(['render', 'generation'])
      const tiles = repo.tilesAt[id]
      expect(index.count).to.equal(tiles.length)
      const xs = tiles.map((t) => t[0])
      const ys = tiles.map((t) => t[1])
      expect(index.bounds, rev).to.deep.equal([Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)])
      // Zoom -4 names each leaf (16x16 tiles) by its node id in the history's tree.
      const level4 = index.levels.find((l) => l.zoom === -4)!
      const shown = level4.images.map(([i, j, key]) => `${i + index.origin[0] / 16},${j + index.origin[1] / 16},${key}`).sort()
      expect(shown, rev).to.deep.equal((await leafIds(rev)).map((l) => l.join(',')).sort())
      expect(index.origin.every((o) => o % 256 === 0)).to.equal(true)
      // Each zoom out halves the grid, down to one image for the whole map.
      const coarsest = index.levels.at(-1)!
      expect(coarsest.zoom).to.equal(index.minZoom)
      expect(coarsest.images.length).to.equal(1)
      expect(index.levels.map((l) => l.zoom)).to.deep.equal(Array.from({length: -3 - index.minZoom}, (_, n) => -4 - n))
    }
  })

  it('map images: a leaf image holds its tiles\' exact pixels, zoom 0 is the stored PNG, all named by content (ETag, immutable, 304)', async () => {
    const index = await getJson<PyramidIndex>('/api/pyramid?rev=HEAD&layer=generation')
    const tiles = await getJson<{tiles: Array<[number, number, Record<string, string | null>]>}>('/api/tiles?rev=HEAD&bbox=0,0,15,15')
    const leaf = index.levels.find((l) => l.zoom === -4)!.images.find(([i, j]) => i === -index.origin[0] / 16 && j === -index.origin[1] / 16)!
    const url = `/api/pyramid/generation/-4/${leaf[2]}.webp`
    const r = await get(url)
    expect(r.status).to.equal(200)
    expect(r.headers.get('content-type')).to.equal('image/webp')
    expect(r.headers.get('cache-control')).to.contain('immutable')
    const etag = r.headers.get('etag')!
    const {data, info} = await sharp(Buffer.from(await r.arrayBuffer())).ensureAlpha().raw().toBuffer({resolveWithObject: true})
    expect([info.width, info.height]).to.deep.equal([256, 256])
    const pngPixels = async (id: string): Promise<Buffer> => sharp(Buffer.from(await (await get(`/api/object/${id}.png`)).arrayBuffer())).ensureAlpha().raw().toBuffer()
    // 16 px tiles in 16 px cells: every pixel of the leaf image is the tile's own.
    const seen = new Set(tiles.tiles.map(([x, y]) => `${x},${y}`))
    for (const [x, y, ids] of tiles.tiles) {
      const at = (px: number, py: number): number[] => {
        const o = ((y * 16 + py) * 256 + x * 16 + px) * 4
        return [...data.subarray(o, o + 4)]
      }
      if (ids.generation) {
        const png = await pngPixels(ids.generation)
        for (const [px, py] of [[3, 5], [8, 8], [15, 0]]) expect(at(px, py), `${x},${y}`).to.deep.equal([...png.subarray((py * 16 + px) * 4, (py * 16 + px) * 4 + 4)])
      } else {
        expect(at(4, 8), `${x},${y} has no generation: grey`).to.deep.equal([180, 180, 180, 255])
      }
    }
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) if (!seen.has(`${x},${y}`)) expect(data[((y * 16 + 8) * 256 + x * 16 + 8) * 4 + 3], `${x},${y} is no tile: transparent`).to.equal(0)
    expect((await get(url, {headers: {'If-None-Match': etag}})).status).to.equal(304)

    // Zoom 0: the tile's PNG itself, by its place in the leaf.
    const [x, y, ids] = tiles.tiles.find(([, , i]) => i.generation)!
    const png = await get(`/api/pyramid/generation/0/${leaf[2]}/${x}/${y}.png`)
    expect(png.headers.get('content-type')).to.equal('image/png')
    expect(hashBytes(Buffer.from(await png.arrayBuffer()))).to.equal(ids.generation)
    const nowhere = [...Array(256).keys()].map((n) => [n % 16, Math.floor(n / 16)]).find(([a, b]) => !seen.has(`${a},${b}`))!
    const empty = await sharp(Buffer.from(await (await get(`/api/pyramid/generation/0/${leaf[2]}/${nowhere[0]}/${nowhere[1]}.png`)).arrayBuffer())).metadata()
    expect([empty.width, empty.height, empty.hasAlpha]).to.deep.equal([1, 1, true])

    // Inside a leaf (zoom -1): 2x2 tiles at 128 px each, the 16 px tiles enlarged pixel for pixel.
    const part = await get(`/api/pyramid/generation/-1/${leaf[2]}/0/0.webp`)
    expect(part.status).to.equal(200)
    const p = await sharp(Buffer.from(await part.arrayBuffer())).ensureAlpha().raw().toBuffer({resolveWithObject: true})
    expect([p.info.width, p.info.height]).to.deep.equal([256, 256])
    const t00 = await pngPixels(tiles.tiles.find(([a, b]) => a === 0 && b === 0)![2].generation!)
    const o = ((5 * 8 + 4) * 256 + 3 * 8 + 4) * 4
    expect([...p.data.subarray(o, o + 4)]).to.deep.equal([...t00.subarray((5 * 16 + 3) * 4, (5 * 16 + 3) * 4 + 4)])

    // The coarsest image exists too, and the cache file holds what was made.
    const top = index.levels.at(-1)!.images[0]
    expect((await get(`/api/pyramid/generation/${index.minZoom}/${top[2]}.webp`)).status).to.equal(200)
    expect(fs.existsSync(path.join(repo.dir, '.tilesync', 'cache', 'pyramid.db'))).to.equal(true)
  })

  it('refuses map images it does not know (404) and malformed requests for them (400)', async () => {
    const unknown = 'e'.repeat(64)
    expect((await get(`/api/pyramid/generation/-4/${unknown}.webp`)).status).to.equal(404)
    expect((await get(`/api/pyramid/generation/-2/${unknown}/0/0.webp`)).status).to.equal(404)
    expect((await get(`/api/pyramid/generation/0/${unknown}/0/0.png`)).status).to.equal(404)
    expect((await get(`/api/pyramid/generation/-3/${unknown}.webp`)).status).to.equal(400)
    expect((await get(`/api/pyramid/generation/-4/${'E'.repeat(64)}.webp`)).status).to.equal(404)
    expect((await get(`/api/pyramid/%ZZ/-4/${unknown}.webp`)).status).to.equal(400)
    expect((await get('/api/pyramid?rev=no-such-branch')).status).to.equal(404)
    expect((await get('/api/pyramid?rev=HEAD~99')).status).to.equal(404)
    const index = await getJson<PyramidIndex>('/api/pyramid?rev=HEAD')
    const leaf = index.levels[0].images[0][2]
    expect((await get(`/api/pyramid/generation/-2/${leaf}/4/0.webp`)).status).to.equal(400)
    // A layer no revision has: nothing is made for it.
    expect((await get(`/api/pyramid/no-such-layer/-4/${leaf}.webp`)).status).to.equal(404)
    expect((await get(`/api/pyramid/no-such-layer/-1/${leaf}/0/0.webp`)).status).to.equal(404)
    expect((await get(`/api/pyramid/no-such-layer/0/${leaf}/0/0.png`)).status).to.equal(404)
    expect((await get(`/api/pyramid/generation/0/${leaf}/16/0.png`)).status).to.equal(400)
  })

  it('thumbnails are cached by object id with ETag = id and 304', async () => {
    const tiles = await getJson<{tiles: Array<[number, number, Record<string, string | null>]>}>('/api/tiles?rev=HEAD&bbox=0,0,0,0')
    const id = tiles.tiles[0][2].generation!
    const thumb = await get(`/api/thumb/128/${id}.webp`)
    expect(thumb.status).to.equal(200)
    expect(thumb.headers.get('etag')).to.equal(`"${id}"`)
    expect(thumb.headers.get('cache-control')).to.equal('public, max-age=31536000, immutable')
    const tm = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()
    expect([tm.format, tm.width, tm.height]).to.deep.equal(['webp', 128, 128])
    expect(fs.existsSync(path.join(repo.dir, '.tilesync', 'cache', 'thumbs', 't128', id.slice(0, 2), id.slice(2)))).to.equal(true)
    const again = await get(`/api/thumb/128/${id}.webp`, {headers: {'If-None-Match': `"${id}"`}})
    expect(again.status).to.equal(304)
    expect(again.headers.get('etag')).to.equal(`"${id}"`)
  })

  it('diff mode data is exactly what `tilesync diff --json` reports', async () => {
    for (const [from, to, args] of [['HEAD~2', 'HEAD~1', ['diff', 'HEAD~2', 'HEAD~1']], ['HEAD~1', 'HEAD', ['diff', 'HEAD~1', 'HEAD']], ['HEAD', 'working', ['diff', 'HEAD']]] as const) {
      const served = await getJson<{changes: ChangeSet}>(`/api/diff?from=${encodeURIComponent(from)}&to=${to}`)
      const cli = cliJson<{changes: ChangeSet}>(repo.dir, [...args])
      expect(served.changes.tiles, `${from}..${to}`).to.deep.equal(cli.changes.tiles)
      expect(served.changes.summary).to.deep.equal(cli.changes.summary)
    }
  })

  it('a tile\'s history lists the commits where it changed, newest first, and any version downloads as PNG', async () => {
    const h = await getJson<TileHistory>('/api/tile-history?rev=HEAD&x=0&y=0')
    expect(h.versions.map((v) => v.commit)).to.deep.equal([repo.commits[2], repo.commits[1], repo.commits[0]])
    expect(h.versions.map((v) => v.status)).to.deep.equal(['modified', 'modified', 'added'])
    const w = await getJson<TileHistory>('/api/tile-history?rev=working&x=0&y=0')
    expect(w.versions.map((v) => v.commit)).to.deep.equal(['working', ...repo.commits.slice().reverse()])
    const deleted = await getJson<TileHistory>('/api/tile-history?rev=HEAD&x=10&y=5')
    expect(deleted.versions.map((v) => [v.commit, v.status])).to.deep.equal([[repo.commits[1], 'deleted'], [repo.commits[0], 'added']])
    const untouched = await getJson<TileHistory>('/api/tile-history?rev=HEAD&x=-12&y=-7')
    expect(untouched.versions.map((v) => v.commit)).to.deep.equal([repo.commits[0]])

    const old = h.versions[2].layers.generation!
    const r = await get(`/api/object/${old.id}.png?download=tile_0_0.png`)
    expect(r.status).to.equal(200)
    expect(r.headers.get('content-type')).to.equal('image/png')
    expect(r.headers.get('content-disposition')).to.equal('attachment; filename="tile_0_0.png"')
    const bytes = Buffer.from(await r.arrayBuffer())
    expect(hashBytes(bytes)).to.equal(old.id)
    expect(bytes.length).to.equal(old.size)
    // A hostile download name cannot escape the header or name a path.
    const odd = await get(`/api/object/${old.id}.png?download=${encodeURIComponent('../../etc/"passwd\r\nX: y')}`)
    expect(odd.headers.get('content-disposition')).to.equal('attachment; filename="etc_passwd_X_y.png"')

    // An image only in the working database is served too (after the working map was read).
    const working = w.versions[0].layers.generation!
    expect(await repo.ws.repo.store.has(working.id)).to.equal(false)
    const wr = await get(`/api/object/${working.id}.png`)
    expect(wr.status).to.equal(200)
    expect(hashBytes(Buffer.from(await wr.arrayBuffer()))).to.equal(working.id)
  })

  it('answers only GET: every other method is 405 and changes nothing', async () => {
    const before = fs.readFileSync(path.join(repo.dir, '.tilesync', 'HEAD'), 'utf8')
    const refs = fs.readFileSync(path.join(repo.dir, '.tilesync', 'refs', 'heads', 'main'), 'utf8')
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND']) {
      for (const p of ['/', '/api/pyramid?rev=HEAD', '/api/refs', `/api/object/${'a'.repeat(64)}.png`, `/api/pyramid/generation/-4/${'a'.repeat(64)}.webp`, '/nowhere']) {
        const r = await rawRequest(server.port, method, p)
        expect(r.status, `${method} ${p}`).to.equal(405)
        expect(r.headers.allow).to.equal('GET')
      }
    }
    expect(fs.readFileSync(path.join(repo.dir, '.tilesync', 'HEAD'), 'utf8')).to.equal(before)
    expect(fs.readFileSync(path.join(repo.dir, '.tilesync', 'refs', 'heads', 'main'), 'utf8')).to.equal(refs)
  })

  it('refuses path traversal and never serves a file from disk', async () => {
    const secret = 'TOP-SECRET-' + Date.now()
    fs.writeFileSync(path.join(path.dirname(repo.dir), 'secret.txt'), secret)
    fs.writeFileSync(path.join(repo.dir, 'secret.txt'), secret)
    const config = fs.readFileSync(path.join(repo.dir, '.tilesync', 'config.json'), 'utf8')
    const id = repo.commits[0]
    const paths = [
      '/../secret.txt', '/../../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fsecret.txt', '/secret.txt',
      '/.tilesync/config.json', '/.tilesync/HEAD', '/generations/v01/quadrants.db', '/app.js/../../secret.txt',
      '/api/object/..%2F..%2F.tilesync%2Fconfig.json.png', '/api/object/../../.tilesync/config.json', `/api/object/${id.slice(0, 2)}/${id.slice(2)}.png`,
      '/api/thumb/128/..%2f..%2f..%2fsecret.txt.webp', '/api/thumb/128/../../../secret.txt', '/api/pyramid/%2e%2e%2fsecret.txt/0/x.png',
      '/api/pyramid?rev=../../secret.txt', '/api/pyramid?rev=..%2f..%2fsecret.txt', '/api/pyramid?rev=refs/../../secret.txt', '/api/tile-history?rev=HEAD/../..&x=0&y=0',
      '/api/pyramid/..%2f..%2fsecret.txt/-4/' + '0'.repeat(64) + '.webp', '/api/pyramid/generation/-4/../../../secret.txt', '/app/../secret.txt', '/app/..%2fsecret.txt.js',
      '/vendor/../package.json', '/vendor/leaflet.js/../../secret.txt', '/app/main.ts', '/app/Main.js', '/src/viewer/web/main.ts', '/node_modules/leaflet/dist/leaflet.js',
      '/api/diff?from=../config.json&to=HEAD', '/api/diff?from=HEAD&to=/etc/passwd', '\\..\\..\\secret.txt', '/api\\..\\secret.txt', '//etc/passwd',
      '/api/object/' + '0'.repeat(64) + '.png/../../../secret.txt',
    ]
    for (const p of paths) {
      const r = await rawRequest(server.port, 'GET', p)
      expect([400, 404], `${p} -> ${r.status} ${r.body.toString().slice(0, 80)}`).to.include(r.status)
      expect(r.body.toString(), p).not.to.contain(secret)
      expect(r.body.toString(), p).not.to.contain(config.slice(0, 40))
      expect(r.body.toString(), p).not.to.contain('root:')
    }
  })

  it('refuses malformed ids (400), unknown ids (404) and objects that are not tile images (404)', async () => {
    const unknown = 'f'.repeat(64)
    for (const p of [`/api/object/${unknown}.png`, `/api/thumb/128/${unknown}.webp`]) {
      expect((await get(p)).status, p).to.equal(404)
      // A matching If-None-Match does not turn an unknown id into a 304.
      expect((await get(p, {headers: {'If-None-Match': `"${unknown}"`}})).status, p).to.equal(404)
    }
    for (const bad of ['abc', 'F'.repeat(64), 'g'.repeat(64), '0'.repeat(63), '0'.repeat(65)]) {
      expect((await get(`/api/object/${bad}.png`)).status, bad).to.equal(400)
      expect((await get(`/api/thumb/128/${bad}.webp`)).status, bad).to.equal(400)
    }
    // A commit object is in the store but is no image: not served.
    expect((await get(`/api/object/${repo.commits[0]}.png`)).status).to.equal(404)
    expect((await get(`/api/thumb/128/${repo.commits[0]}.webp`)).status).to.equal(404)
    expect((await get(`/api/thumb/64/${'a'.repeat(64)}.webp`)).status).to.equal(400)
    expect((await get('/api/tile-history?rev=HEAD&x=1.5&y=0')).status).to.equal(400)
  })

  it('takes more routes next to its own (as an API would add), other methods only where a route answers them', async () => {
    const extended = await startServer(repo.ws, {port: 0, warm: false, routes: (router) => router.add('POST', '/api/echo', ({res}) => {
      res.writeHead(200, {'Content-Type': 'text/plain'})
      res.end('echo')
    })})
    try {
      const post = await rawRequest(extended.port, 'POST', '/api/echo')
      expect([post.status, post.body.toString()]).to.deep.equal([200, 'echo'])
      const get = await rawRequest(extended.port, 'GET', '/api/echo')
      expect([get.status, get.headers.allow]).to.deep.equal([405, 'POST'])
      const elsewhere = await rawRequest(extended.port, 'POST', '/api/refs')
      expect([elsewhere.status, elsewhere.headers.allow]).to.deep.equal([405, 'GET'])
      expect((await rawRequest(extended.port, 'PUT', '/api/echo')).status).to.equal(405)
      expect((await rawRequest(extended.port, 'GET', '/api/refs')).status).to.equal(200)
    } finally {
      await extended.close()
    }
  })

  it('answers only requests addressed to it (no DNS rebinding), with a strict content policy', async () => {
    expect((await rawRequest(server.port, 'GET', '/api/refs', {Host: 'evil.example:80'})).status).to.equal(403)
    expect((await rawRequest(server.port, 'GET', '/api/refs', {Host: `localhost:${server.port}`})).status).to.equal(200)
    const page = await get('/')
    expect(page.headers.get('content-security-policy')).to.contain("default-src 'none'")
    expect(page.headers.get('x-content-type-options')).to.equal('nosniff')
  })

  it('`tilesync serve` starts on 127.0.0.1, serves the page and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {cwd: repo.dir, stdio: ['ignore', 'pipe', 'pipe']})
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ''
        const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 30_000)
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString()
          const m = /read-only at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)
          if (m) {
            clearTimeout(timer)
            resolve(m[1])
          }
        })
        child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)))
      })
      const page = await fetch(url)
      expect(page.status).to.equal(200)
      expect(await page.text()).to.contain('<div id="map-a"')
    } finally {
      child.kill('SIGTERM')
    }
    const code = await new Promise<number | null>((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode)
      else child.on('exit', (c) => resolve(c))
    })
    expect(code).to.equal(0)
  })
})
