/**
 * A proxy in front of the bench's S3 server that holds each request `delayMs` before passing
 * it on, as a bucket across a WAN answers (R2 from an office: 20-80 ms a request). Its own
 * process, since the bench runs the tools synchronously. Prints its endpoint, then serves
 * until killed. `GET /__requests` answers the number of requests passed on so far and
 * `POST /__requests` sets it back to 0 (bucket names cannot start with "_").
 * Usage: node delay-proxy-process.js TARGET_URL DELAY_MS
 */
import * as http from 'node:http'
import type {AddressInfo} from 'node:net'

const [target, delayArg] = process.argv.slice(2)
const delayMs = Number(delayArg ?? 40)
const upstream = new URL(target)
const agent = new http.Agent({keepAlive: true, maxSockets: 256})
let requests = 0

// A client that hangs up mid-answer (rclone cancelling a transfer) must not stop the proxy.
process.on('uncaughtException', (error) => {
  process.stderr.write(`delay proxy: ${error.message}\n`)
})

const server = http.createServer((req, res) => {
  req.on('error', () => res.destroy())
  res.on('error', () => req.destroy())
  if (req.url === '/__requests') {
    if (req.method === 'POST') requests = 0
    res.end(String(requests))
    return
  }
  requests++
  setTimeout(() => {
    const up = http.request({host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent}, (r) => {
      r.on('error', () => res.destroy())
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  }, delayMs)
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
