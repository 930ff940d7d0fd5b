/**
 * s3rver as its own process for the benchmark (the benchmark runs tilesync synchronously, so
 * a server in its own event loop would never answer). Prints the endpoint, then serves until
 * killed. Run with --openssl-legacy-provider (s3rver's listing tokens need DES).
 */
import {createRequire} from 'node:module'

const [directory, bucket] = process.argv.slice(2)
const S3rver = createRequire(import.meta.url)('s3rver') as new (o: Record<string, unknown>) => {run(): Promise<{port: number}>}
const server = new S3rver({address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{name: bucket, configs: []}]})
const {port} = await server.run()
process.stdout.write(`http://127.0.0.1:${port}\n`)
