import {Command} from '@oclif/core'

import {isTilesyncError, type TilesyncError} from '../core/errors.js'
import {lastDatabasePath, translateSqliteError} from '../db/open-database.js'
import {attachOrigin} from '../ops/partial-clone.js'
import {Workspace} from '../workspace/workspace.js'
import {handleInterrupts} from './interrupt.js'
import {errorJson} from './print-error.js'
import {parseErrorOf} from './parse-errors.js'

/**
 * Base for every command: commands parse flags, call the library and return data. oclif
 * prints that data as JSON under --json; otherwise the command prints its human summary.
 * Every TilesyncError becomes one line ("Error: problem (what to do)") and exit code 1,
 * or under --json an error object with a stable `code`.
 */
export abstract class TilesyncCommand extends Command {
  static override enableJsonFlag = true
  /** A command that stops on Ctrl-C itself (serve) sets this; the rest get handleInterrupts. */
  static handlesOwnSignals = false

  override async init(): Promise<void> {
    await super.init()
    // Ctrl-C: a true message, no half-written files left for gc, exit 130.
    if (!(this.ctor as typeof TilesyncCommand).handlesOwnSignals) handleInterrupts((this.id ?? '').replaceAll(':', ' '), {json: this.argv.includes('--json')})
  }

  /** Closes the origin a partial clone reads missing objects from, when one was opened. */
  private closeOrigin?: () => Promise<void>

  protected async workspace(): Promise<Workspace> {
    const ws = await Workspace.open(process.cwd())
    // In a partial clone, an object never downloaded is read from the origin when needed.
    if (ws.repo.partial) this.closeOrigin = attachOrigin(ws).close
    return ws
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    await this.closeOrigin?.().catch(() => undefined)
    return super.finally(err)
  }

  /** Prints human output only when --json is off. */
  protected say(text = ''): void {
    if (!this.jsonEnabled()) this.log(text)
  }

  /** A warning: one line on stderr (so --json output stays parseable), also under --json. */
  protected warnLine(text: string): void {
    process.stderr.write(`tilesync: warning: ${text}\n`)
  }

  protected override async catch(err: Error & {exitCode?: number}): Promise<unknown> {
    // A SQLite error no layer below translated still becomes one line naming the database.
    if ((err as {code?: unknown}).code?.toString().startsWith('SQLITE_')) err = translateSqliteError(err, lastDatabasePath() ?? 'the database') as Error
    // A mistyped flag or a missing argument is an expected failure like any other.
    const known: TilesyncError | undefined = isTilesyncError(err) ? err : parseErrorOf(err, {
      name: (this.id ?? '').replaceAll(':', ' '),
      flags: this.ctor.flags ?? {},
    })
    if (known) {
      process.exitCode = 1
      if (this.jsonEnabled()) {
        this.logJson(errorJson(known))
        return
      }
      // Expected failures are one line on stderr, no stack trace, no wrapping.
      process.stderr.write(`tilesync: ${known.oneLine}\n`)
      return
    }
    return super.catch(err)
  }

  protected override toErrorJson(err: unknown): unknown {
    const e = err as {code?: string; message?: string}
    return {status: 'error', error: {code: e.code ?? 'ERROR', message: e.message ?? String(err)}}
  }
}
