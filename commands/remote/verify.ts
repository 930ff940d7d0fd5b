import {Args} from '@oclif/core'

import {TilesyncCommand} from '../../src/cli/base-command.js'
import {isTilesyncError} from '../../src/core/errors.js'
import {listRemotes, remoteConfig, verifyRemote} from '../../src/ops/remotes.js'
import type {VerifyCheck} from '../../src/remote/capabilities.js'

export interface RemoteVerification {
  name: string
  url: string
  ok: boolean
  checks: VerifyCheck[]
}

const CHECKS: VerifyCheck['check'][] = ['list', 'read', 'write', 'delete']

export default class RemoteVerify extends TilesyncCommand {
  static override summary = 'Check that a remote works: list, read, write and delete a scratch key.'
  static override description = `Does on a scratch key under tmp/ what push and pull do: write, read back, list, delete.
Prints one line per check with ok or FAILED and why (missing or wrong credentials, permissions,
unreachable endpoint); the exit code is 1 if any check failed. Without NAME, every remote is checked.`

  static override examples = [
    '<%= config.bin %> remote verify',
    '<%= config.bin %> remote verify origin',
    '<%= config.bin %> remote verify production --json',
  ]

  static override args = {name: Args.string({description: 'remote name (default: all remotes)'})}

  async run(): Promise<{ok: boolean; remotes: RemoteVerification[]}> {
    const {args} = await this.parse(RemoteVerify)
    const repo = (await this.workspace()).repo
    const names = args.name ? [args.name] : listRemotes(repo).map((r) => r.name)
    if (names.length === 0) this.say('No remotes. Add one with `tilesync remote add origin PATH_OR_URL`.')
    const remotes: RemoteVerification[] = []
    for (const name of names) {
      const config = remoteConfig(repo, name)
      let checks: VerifyCheck[]
      try {
        checks = await verifyRemote(repo, name)
      } catch (error) {
        // Opening failed (missing credentials, unsupported URL): every check fails for that reason.
        const reason = isTilesyncError(error) ? `${error.code}: ${error.oneLine}` : (error as Error).message
        checks = CHECKS.map((check) => ({check, ok: false, detail: reason}))
      }
      checks.sort((a, b) => CHECKS.indexOf(a.check) - CHECKS.indexOf(b.check))
      const ok = checks.every((c) => c.ok)
      remotes.push({name, url: config.url, ok, checks})
      this.say(`${name} (${config.url}): ${ok ? 'ok' : 'FAILED'}`)
      checks.forEach((c, i) => {
        const same = i > 0 && !c.ok && !checks[i - 1].ok && c.detail === checks[i - 1].detail
        this.say(`  ${c.check.padEnd(6)} ${c.ok ? 'ok    ' : 'FAILED'}  ${same ? '(same reason)' : c.detail}`)
      })
    }
    const ok = remotes.every((r) => r.ok)
    if (!ok) process.exitCode = 1
    return {ok, remotes}
  }
}
