import {Flags} from '@oclif/core'

import {TilesyncCommand} from '../src/cli/base-command.js'

/** After Ctrl+C or SIGTERM, whatever is still running gets this long before the process ends anyway. */
const STOP_GRACE_MS = 500

export default class Serve extends TilesyncCommand {
  static override summary = 'Browse the repository in a web browser: the map of any revision or of the working database, two revisions compared, history, tile histories.'
  static override description = 'A local, read-only web app on a tile pyramid: zoomed out, one image shows a region of the map (down to one image for the whole map), zoomed in, a tile is its stored PNG. Map images are made in a background thread and cached under .tilesync/cache/pyramid.db by the id of the tree node they show, so a new revision only remakes the regions it changed; at start the server makes HEAD\'s. It listens on 127.0.0.1 unless --host says otherwise, answers only GET, and serves nothing but this repository\'s commits and tile images. Ctrl+C (or SIGTERM) stops it at once, also while it builds.'
  static override examples = [
    '<%= config.bin %> serve',
    '<%= config.bin %> serve --port 8080',
    '<%= config.bin %> serve --no-build   # make map images only when a page asks for them',
    '<%= config.bin %> serve --host 0.0.0.0 --port 8080   # reachable from other machines (prints a warning)',
  ]

  // A server runs until stopped; there is no result document to print.
  static override enableJsonFlag = false

  static override flags = {
    port: Flags.integer({char: 'p', description: 'port to listen on (0: any free port)', default: 7070, min: 0, max: 65_535}),
    host: Flags.string({description: 'address to listen on', default: '127.0.0.1'}),
    build: Flags.boolean({description: "make HEAD's map images in the background at start (--no-build: only when a page asks)", default: true, allowNo: true}),
  }

  static override handlesOwnSignals = true

  async run(): Promise<void> {
    const {flags} = await this.parse(Serve)
    // Listen for the stop before anything slow starts: the server must stop at once at any time.
    let stopping = false
    const stopped = new Promise<'stop'>((resolve) => {
      const stop = (): void => {
        if (stopping) process.exit(0)
        stopping = true
        setTimeout(() => process.exit(0), STOP_GRACE_MS).unref()
        resolve('stop')
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    })
    const {hostWarning, startServer} = await import('../src/viewer/server.js')
    const ws = await this.workspace()
    const warning = hostWarning(flags.host)
    if (warning) this.warn(warning)
    const started = startServer(ws, {host: flags.host, port: flags.port, warm: flags.build})
    const first = await Promise.race([started, stopped])
    if (first === 'stop') {
      // Stopped while starting: the server may still come up; it closes with the process.
      started.then((s) => s.close()).catch(() => {})
      return
    }
    this.log(`Serving ${ws.repo.root} read-only at ${first.url}`)
    if (flags.build) this.log("Making HEAD's map images in the background (cached in .tilesync/cache/pyramid.db).")
    this.log('Press Ctrl+C to stop.')
    await stopped
    await first.close()
  }
}
