import {spawn, type ChildProcess} from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import Database from 'better-sqlite3'

import {makeTilePng} from '../sample/tile-png.js'
import {ensureBenchDb} from './generate-bench-db.js'
import {has, measure, run, type Sample} from './measure.js'

const here = path.dirname(fileURLToPath(import.meta.url))

export interface WanOptions {
  work: string
  cache: string
  bin: string
  env: NodeJS.ProcessEnv
  /** Delay the proxy adds to each request (default 40 ms). */
  delayMs: number
  /** [quadrants, image px] of each database: the small-tile one and the 512 px one. */
  databases: Array<{quadrants: number; size: number}>
  record: (kase: string, tool: string, samples: Sample[], extra?: {note?: string; target?: string}) => unknown
}

async function started(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()))
    child.once('exit', () => reject(new Error('a bench server exited')))
  })
}

/**
 * The WAN case: tilesync and rclone against s3rver behind a proxy that delays every request
 * (a bucket 40 ms away), on the same tiles, counting the requests each makes: first push,
 * clone (rclone: download), push after 100 tiles changed (rclone: sync --checksum) and pull of
 * that change (rclone: copy --checksum down), for each database.
 */
export async function wanCases(o: WanOptions): Promise<void> {
  const dir = path.join(o.work, 'wan-s3rver')
  fs.rmSync(dir, {recursive: true, force: true})
  fs.mkdirSync(dir, {recursive: true})
  const s3 = spawn(process.execPath, ['--openssl-legacy-provider', path.join(here, 's3-server-process.js'), dir, 'wan'], {stdio: ['ignore', 'pipe', 'inherit']})
  let proxy: ChildProcess | undefined
  // The servers go with the bench even when it dies on an error.
  const stop = (): void => {
    proxy?.kill()
    s3.kill()
  }
  process.once('exit', stop)
  try {
    const direct = await started(s3)
    proxy = spawn(process.execPath, [path.join(here, 'delay-proxy-process.js'), direct, String(o.delayMs)], {stdio: ['ignore', 'pipe', 'inherit']})
    const endpoint = await started(proxy)
    // A fresh connection each time (no agent): the bench's own process sits blocked while the
    // tools run, and a kept-alive connection may be closed by then.
    const ask = (method: string): Promise<string> => new Promise((resolve, reject) => {
      const req = http.request(`${endpoint}/__requests`, {method, agent: false}, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (body += d))
        res.on('end', () => resolve(body))
      })
      req.on('error', reject)
      req.end()
    })
    const requests = async (): Promise<number> => Number(await ask('GET'))
    const reset = async (): Promise<void> => {
      await ask('POST')
    }
    const s3env = {...o.env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER'}
    const renv = {
      RCLONE_CONFIG_BS_TYPE: 's3', RCLONE_CONFIG_BS_PROVIDER: 'Other', RCLONE_CONFIG_BS_ENDPOINT: endpoint,
      RCLONE_CONFIG_BS_ACCESS_KEY_ID: 'S3RVER', RCLONE_CONFIG_BS_SECRET_ACCESS_KEY: 'S3RVER', RCLONE_CONFIG_BS_FORCE_PATH_STYLE: 'true', AWS_CA_BUNDLE: undefined,
    }
    const counted = async (kase: string, tool: string, fn: () => Sample, target?: string): Promise<{sample: Sample; requests: number}> => {
      await reset()
      const sample = fn()
      const n = await requests()
      o.record(kase, tool, [sample], {note: `${n} requests`, target})
      console.log(`  ${n} requests`)
      return {sample, requests: n}
    }
    for (const d of o.databases.filter((x) => x.quadrants > 0)) {
      const bench = await ensureBenchDb(o.cache, {quadrants: d.quadrants, imageSize: d.size, noise: 0.2, generationRatio: 0.9, seed: 1})
      const label = `WAN ${o.delayMs} ms, ${d.quadrants} quadrants of ${d.size} px (${(fs.statSync(bench.file).size / 1e6).toFixed(0)} MB)`
      const project = path.join(o.work, `wan-project-${d.size}`)
      const dbFile = path.join(project, 'generations/v01/quadrants.db')
      fs.rmSync(project, {recursive: true, force: true})
      fs.mkdirSync(path.dirname(dbFile), {recursive: true})
      fs.copyFileSync(bench.file, dbFile)
      const t = (cwd: string, ...args: string[]): Sample => measure(process.execPath, [o.bin, ...args], {cwd, env: s3env})
      run(process.execPath, [o.bin, 'init'], project, o.env)
      run(process.execPath, [o.bin, 'commit', '-m', 'first'], project, o.env)
      const bucketPath = `wan/t-${d.size}-${Date.now()}`
      run(process.execPath, [o.bin, 'remote', 'add', 'wan', `s3://${bucketPath}`, '--endpoint', endpoint], project, s3env)
      const small = d.size < 128
      await counted(`${label}: first push`, 'tilesync', () => t(project, 'push', 'wan', 'main'), small ? '<= 6 s, <= 300 requests' : '<= 0.5x rclone')
      const cloneDir = path.join(o.work, `wan-clone-${d.size}`)
      fs.rmSync(cloneDir, {recursive: true, force: true})
      await counted(`${label}: clone`, 'tilesync', () => t(o.work, 'clone', `s3://${bucketPath}`, cloneDir, '--endpoint', endpoint), small ? '<= 6 s, <= 300 requests' : '<= 0.5x rclone')
      changeTiles(dbFile, null, 100, d.size, 1)
      run(process.execPath, [o.bin, 'commit', '-m', '100 tiles'], project, o.env)
      await counted(`${label}: push after 100 tiles`, 'tilesync', () => t(project, 'push', 'wan', 'main'), '<= 15 requests')
      await counted(`${label}: pull of 100 tiles`, 'tilesync', () => t(cloneDir, 'pull'), '<= 15 requests')
      if (!has('rclone')) continue
      const tiles = path.join(o.work, `wan-tiles-${d.size}`)
      exportTiles(bench.file, tiles)
      const rcloneDown = path.join(o.work, `wan-rclone-down-${d.size}`)
      fs.rmSync(rcloneDown, {recursive: true, force: true})
      const rc = (...args: string[]): Sample => measure('rclone', [...args, '--transfers', '16'], {cwd: o.work, env: renv})
      await counted(`${label}: first push`, 'rclone copy', () => rc('copy', tiles, `bs:wan/rclone-${d.size}`))
      await counted(`${label}: clone`, 'rclone copy (download)', () => rc('copy', `bs:wan/rclone-${d.size}`, rcloneDown))
      changeTiles(null, tiles, 100, d.size, 1, bench.file)
      await counted(`${label}: push after 100 tiles`, 'rclone sync --checksum', () => rc('sync', '--checksum', tiles, `bs:wan/rclone-${d.size}`))
      await counted(`${label}: pull of 100 tiles`, 'rclone copy --checksum', () => rc('copy', '--checksum', `bs:wan/rclone-${d.size}`, rcloneDown))
      fs.rmSync(tiles, {recursive: true, force: true})
      fs.rmSync(rcloneDown, {recursive: true, force: true})
    }
  } finally {
    stop()
    process.removeListener('exit', stop)
  }
}

function exportTiles(dbFile: string, dir: string): void {
  fs.rmSync(dir, {recursive: true, force: true})
  fs.mkdirSync(dir, {recursive: true})
  const db = new Database(dbFile, {readonly: true})
  for (const r of db.prepare('SELECT quadrant_x AS x, quadrant_y AS y, render, generation FROM quadrants').iterate() as Iterable<{x: number; y: number; render: Buffer | null; generation: Buffer | null}>) {
    if (r.render) fs.writeFileSync(path.join(dir, `${r.x}_${r.y}_render.png`), r.render)
    if (r.generation) fs.writeFileSync(path.join(dir, `${r.x}_${r.y}_generation.png`), r.generation)
  }
  db.close()
}

/** The same 100 tiles' generation images replaced, in the database (`dbFile`) or in the exported files (`tilesDir`, keys read from `keysFrom`). */
function changeTiles(dbFile: string | null, tilesDir: string | null, count: number, size: number, round: number, keysFrom?: string): void {
  const source = new Database((dbFile ?? keysFrom)!, {readonly: dbFile === null})
  const keys = source.prepare('SELECT quadrant_x AS x, quadrant_y AS y FROM quadrants ORDER BY quadrant_y, quadrant_x').all() as Array<{x: number; y: number}>
  const up = dbFile ? source.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = ? AND quadrant_y = ?') : null
  source.transaction(() => {
    for (let i = 0; i < count; i++) {
      const k = keys[(round * 7919 + i * 97) % keys.length]
      const png = makeTilePng(size, 1_000_000 + round * 1000 + i, 0.2)
      up?.run(png, k.x, k.y)
      if (tilesDir) fs.writeFileSync(path.join(tilesDir, `${k.x}_${k.y}_generation.png`), png)
    }
  })()
  source.close()
}
