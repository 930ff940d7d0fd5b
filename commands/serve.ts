import {Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'

export default class Serve extends TilesyncCommand {
  static override summary = 'Browse the repository in a web browser: history, tile maps of any revision, diffs, tile histories.'
  static override description = 'A local, read-only web app. It listens on 127.0.0.1 unless --host says otherwise, answers only GET, and serves nothing but this repository\'s commits and tile images. Thumbnails are cached under .tilesync/cache/thumbs/ by object id. Stop it with Ctrl+C.'
  static override examples = [
    '<%= config.bin %> serve',
    '<%= config.bin %> serve --port 8080',
    '<%= config.bin %> serve --host 0.0.0.0 --port 8080   # reachable from other machines (prints a warning)',
  ]

  // A server runs until stopped; there is no result document to print.
  static override enableJsonFlag = false

  static override flags = {
    port: Flags.integer({char: 'p', description: 'port to listen on (0: any free port)', default: 7070, min: 0, max: 65_535}),
    host: Flags.string({description: 'address to listen on', default: '127.0.0.1'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Serve)
    const {hostWarning, startServer} = await import('../src/viewer/server.js')
    const ws = await this.workspace()
    const warning = hostWarning(flags.host)
    if (warning) this.warn(warning)
    const server = await startServer(ws, {host: flags.host, port: flags.port})
    this.log(`Serving ${ws.repo.root} read-only at ${server.url}`)
    this.log('Press Ctrl+C to stop.')
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        resolve()
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    })
    await server.close()
  }
}
