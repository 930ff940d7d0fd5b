import type {TilesyncError} from '../core/errors.js'

/** The JSON form of an error, as `--json` prints it on stdout. */
export function errorJson(err: TilesyncError): {status: 'error'; error: Record<string, unknown>} {
  return {status: 'error', error: {code: err.code, message: err.message, hint: err.hint, ...(err.data ? {data: err.data} : {})}}
}

/**
 * How every expected failure reaches the user: one line on stderr ("tilesync: problem (what to
 * do)"), or the JSON error object on stdout under --json; exit code 1 either way.
 */
export function printError(err: TilesyncError, json: boolean): void {
  process.exitCode = 1
  if (json) process.stdout.write(JSON.stringify(errorJson(err), null, 2) + '\n')
  else process.stderr.write(`tilesync: ${err.oneLine}\n`)
}
