import {spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type {AddressInfo} from 'node:net'
import * as path from 'node:path'

import Database from 'better-sqlite3'

import {generateDatabase} from '../sample/generate-database.js'
import {makeTilePng} from '../sample/tile-png.js'
import {has, measure, run, type Sample} from './measure.js'

type Record = (kase: string, tool: string, samples: Sample[], extra?: {target?: string; note?: string}) => unknown

export interface RemoteDataContext {
  work: string
  runs: number
  bin: string
  repoRoot: string
  env: NodeJS.ProcessEnv
  record: Record
}

/** Every request waits this long first: R2 seen from an office (see BRIEF's WAN figure). */
const WAN_MS = 40

/** An HTTP proxy in front of `target` that holds each request WAN_MS before passing it on. */
async function startDelayProxy(target: string): Promise<{url: string; requests: () => number; close: () => Promise<void>}> {
  const to = new URL(target)
  let count = 0
  const server = http.createServer((req, res) => {
    count++
    setTimeout(() => {
      const up = http.request({host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers}, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers)
        r.pipe(res)
      })
      up.on('error', () => res.destroy())
      req.pipe(up)
    }, WAN_MS)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => count,
    close: () => new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}

/** Runs a command as its own process without blocking this one (the proxy lives here); wall time. */
function timed(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint()
    const child = spawn(cmd, args, {cwd, env: {...process.env, TILESYNC_NO_PROGRESS: '1', ...env}, stdio: ['ignore', 'ignore', 'pipe']})
    let err = ''
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err.slice(-2000)}`))
      else resolve({seconds: Number(process.hrtime.bigint() - start) / 1e9, maxRssMb: null})
    })
  })
}

async function startS3(work: string, repoRoot: string): Promise<{endpoint: string; child: ChildProcess}> {
  const dir = path.join(work, 's3rver-remote-data')
  fs.rmSync(dir, {recursive: true, force: true})
  fs.mkdirSync(dir, {recursive: true})
  const child = spawn(process.execPath, ['--openssl-legacy-provider', path.join(repoRoot, 'dist', 'src', 'bench', 's3-server-process.js'), dir, 'bench'], {stdio: ['ignore', 'pipe', 'inherit']})
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()))
    child.once('exit', () => reject(new Error('s3rver exited')))
  })
  return {endpoint, child}
}

/**
 * `tilesync remote destroy` of an S3 remote holding a pushed history (about 3,000 tiles with
 * two images each) across a 40 ms WAN (a delaying proxy in front of s3rver), against
 * `rclone delete` of the same keys through the same proxy.
 */
export async function destroyCase(ctx: RemoteDataContext): Promise<void> {
  const {endpoint, child} = await startS3(ctx.work, ctx.repoRoot)
  const proxy = await startDelayProxy(endpoint)
  const env = {...ctx.env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', TILESYNC_JOBS: '16'}
  const dir = path.join(ctx.work, 'destroy-project')
  try {
    fs.rmSync(dir, {recursive: true, force: true})
    generateDatabase(path.join(dir, 'generations', 'v01', 'quadrants.db'), {width: 60, height: 50, imageSize: 16})
    run(process.execPath, [ctx.bin, 'init'], dir, env)
    run(process.execPath, [ctx.bin, 'commit', '-m', 'first'], dir, env)
    const runs = Math.min(ctx.runs, 3)
    const fill = (name: string, prefix: string): void => {
      // Filled straight into s3rver (no delay): only the deletion is measured across the WAN.
      run(process.execPath, [ctx.bin, 'remote', 'add', name, `s3://bench/${prefix}`, '--endpoint', endpoint], dir, env)
      run(process.execPath, [ctx.bin, 'push', name, 'main'], dir, env)
    }
    const ours: Sample[] = []
    let keys = 0
    let requests = 0
    for (let i = 0; i < runs; i++) {
      fill(`fill${i}`, `destroy-${i}`)
      run(process.execPath, [ctx.bin, 'remote', 'add', `wan${i}`, `s3://bench/destroy-${i}`, '--endpoint', proxy.url], dir, env)
      // Counted on the direct remote (the same keys): a synchronous run here would stall the proxy in this process.
      keys = (JSON.parse(run(process.execPath, [ctx.bin, 'remote', 'destroy', `fill${i}`, '--dry-run', '--json'], dir, env)) as {keys: number}).keys
      const before = proxy.requests()
      ours.push(await timed(process.execPath, [ctx.bin, 'remote', 'destroy', `wan${i}`, '--confirm', `wan${i}`], dir, env))
      requests = proxy.requests() - before
    }
    const r = ctx.record(`remote destroy, ${keys} keys, S3 + ${WAN_MS} ms WAN`, 'tilesync remote destroy', ours, {note: `${requests} requests (listing and counting included)`}) as {medianSeconds: number}
    if (has('rclone')) {
      const renv = {
        RCLONE_CONFIG_BS_TYPE: 's3', RCLONE_CONFIG_BS_PROVIDER: 'Other', RCLONE_CONFIG_BS_ENDPOINT: proxy.url,
        RCLONE_CONFIG_BS_ACCESS_KEY_ID: 'S3RVER', RCLONE_CONFIG_BS_SECRET_ACCESS_KEY: 'S3RVER', RCLONE_CONFIG_BS_FORCE_PATH_STYLE: 'true', AWS_CA_BUNDLE: undefined,
      }
      const rc: Sample[] = []
      for (let i = 0; i < runs; i++) {
        fill(`rfill${i}`, `rclone-del-${i}`)
        const before = proxy.requests()
        rc.push(await timed('rclone', ['delete', '--checkers', '16', `bs:bench/rclone-del-${i}`], dir, renv))
        requests = proxy.requests() - before
      }
      const p = ctx.record(`remote destroy, ${keys} keys, S3 + ${WAN_MS} ms WAN`, 'rclone delete --checkers 16', rc, {note: `${requests} requests`}) as {medianSeconds: number}
      console.log(`  ratio destroy tilesync / rclone delete: ${(r.medianSeconds / p.medianSeconds).toFixed(2)}`)
    }
  } finally {
    await proxy.close()
    child.kill()
  }
}

/**
 * A pipeline's after-each-batch step, commit then push of one changed tile to a directory
 * remote: through a running `serve --api` (two HTTP requests) against two CLI processes.
 */
export async function syncApiCase(ctx: RemoteDataContext, rounds = 5): Promise<void> {
  const dir = path.join(ctx.work, 'sync-api')
  fs.rmSync(dir, {recursive: true, force: true})
  const dbFile = path.join(dir, 'generations', 'v01', 'quadrants.db')
  generateDatabase(dbFile, {width: 40, height: 25, imageSize: 64})
  const env = {...ctx.env, TILESYNC_NO_PROGRESS: '1'}
  run(process.execPath, [ctx.bin, 'init'], dir, env)
  run(process.execPath, [ctx.bin, 'commit', '-m', 'first'], dir, env)
  run(process.execPath, [ctx.bin, 'remote', 'add', 'origin', path.join(dir, '..', 'sync-api-remote')], dir, env)
  fs.rmSync(path.join(dir, '..', 'sync-api-remote'), {recursive: true, force: true})
  run(process.execPath, [ctx.bin, 'push', 'origin'], dir, env)
  let seed = 1
  const edit = (): void => {
    const db = new Database(dbFile)
    db.prepare('UPDATE quadrants SET generation = ? WHERE quadrant_x = 0 AND quadrant_y = 0').run(makeTilePng(64, 10_000 + seed++))
    db.close()
  }

  const cli: Sample[] = []
  for (let i = 0; i < rounds; i++) {
    edit()
    const a = measure(process.execPath, [ctx.bin, 'commit', '-m', `cli ${i}`], {cwd: dir, env})
    const b = measure(process.execPath, [ctx.bin, 'push', 'origin'], {cwd: dir, env})
    cli.push({seconds: a.seconds + b.seconds, maxRssMb: Math.max(a.maxRssMb ?? 0, b.maxRssMb ?? 0) || null})
  }
  ctx.record('commit + push of 1 tile (pipeline step)', 'tilesync CLI (2 processes)', cli)

  const token = randomBytes(24).toString('hex')
  const server = spawn(process.execPath, [ctx.bin, 'serve', '--api', '--no-build', '--port', '0'], {cwd: dir, env: {...process.env, ...env, TILESYNC_API_TOKEN: token}, stdio: ['ignore', 'pipe', 'inherit']})
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = ''
      server.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)
        if (m && out.includes('Sync API')) resolve(m[1])
      })
      server.once('exit', (code) => reject(new Error(`serve --api exited ${code}`)))
    })
    const post = async (route: string, body: unknown): Promise<void> => {
      const res = await fetch(new URL(route, url), {method: 'POST', headers: {authorization: `Bearer ${token}`, 'content-type': 'application/json'}, body: JSON.stringify(body)})
      if (res.status !== 200) throw new Error(`${route}: ${res.status} ${await res.text()}`)
      await res.arrayBuffer()
    }
    const api: Sample[] = []
    for (let i = 0; i < rounds; i++) {
      edit()
      const start = process.hrtime.bigint()
      await post('/api/commit', {message: `api ${i}`})
      await post('/api/push', {remote: 'origin'})
      api.push({seconds: Number(process.hrtime.bigint() - start) / 1e9, maxRssMb: null})
    }
    ctx.record('commit + push of 1 tile (pipeline step)', 'tilesync serve --api', api)
  } finally {
    server.kill('SIGTERM')
  }
}
