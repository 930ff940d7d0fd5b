import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {BIN, type CliRun} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {makeProject, tmpDir} from './support/fixtures.js'
import {type OxenHub, startOxenHub} from './support/oxen-hub.js'
import {S3RVER_KEY, startS3Server, type S3TestServer} from './support/s3-server.js'

/**
 * Credentials never leave the environment: not in any output, not in the sync log, not in
 * any file under .tilesync/, also when they are wrong. Each value below is distinctive, so
 * finding it anywhere is a leak. (s3rver checks the key id, not the secret.)
 */
const AWS_SECRET = 'awsSECRET-9c1e-Hk29xQ0-leak-canary'
const R2_SECRET = 'r2SECRET-51d0-Zp81vLw0-leak-canary'
const R2_ACCOUNT = 'acc0unt0leak0canary0000000000042'
const OXEN_TOKEN = 'oxenTOKEN-7e2a-Qm77pX-leak-canary'
const WRONG_KEY_ID = 'AKIAWRONGKEY0LEAKCANARY'
const WRONG_SECRET = 'wrongSECRET-0b0b-leak-canary'
const WRONG_TOKEN = 'wrongTOKEN-3c3c-leak-canary'
const CANARIES = [AWS_SECRET, R2_SECRET, R2_ACCOUNT, OXEN_TOKEN, WRONG_KEY_ID, WRONG_SECRET, WRONG_TOKEN]

function run(cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd, env: {...process.env, TILESYNC_AUTHOR_NAME: 'S', TILESYNC_AUTHOR_EMAIL: 's@example.com', TILESYNC_NO_PROGRESS: '1', ...env}})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    // 'close', not 'exit': the output may still be arriving when the process has exited.
    child.on('close', (code) => resolve({code: code ?? -1, stdout, stderr}))
  })
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir, {recursive: true, withFileTypes: true}).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name))
}

describe('secrets never leak', function () {
  this.timeout(180_000)
  let server: S3TestServer
  let hub: OxenHub

  before(async () => {
    server = await startS3Server({buckets: ['vault']})
    hub = await startOxenHub({token: OXEN_TOKEN})
  })
  after(async () => {
    await server?.stop()
    await hub?.close()
  })

  it('push, fetch, pull, clone, remote verify, fsck --remote and prune, with good and wrong credentials, for S3, R2 and oxen', async () => {
    const prefix = `s-${randomBytes(4).toString('hex')}`
    const good = {
      AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: AWS_SECRET,
      R2_ACCESS_KEY_ID: S3RVER_KEY, R2_SECRET_ACCESS_KEY: R2_SECRET, R2_ACCOUNT_ID: R2_ACCOUNT,
      OXEN_API_TOKEN: OXEN_TOKEN, OXEN_CONFIG_DIR: tmpDir('oxen-config'),
    }
    const wrong = {
      ...good, AWS_ACCESS_KEY_ID: WRONG_KEY_ID, AWS_SECRET_ACCESS_KEY: WRONG_SECRET,
      R2_ACCESS_KEY_ID: WRONG_KEY_ID, R2_SECRET_ACCESS_KEY: WRONG_SECRET, OXEN_API_TOKEN: WRONG_TOKEN,
    }
    const {dir, db} = makeProject()
    const outputs: Array<{what: string; r: CliRun}> = []
    const ok = async (cwd: string, args: string[], env: NodeJS.ProcessEnv = good): Promise<CliRun> => {
      const r = await run(cwd, args, env)
      outputs.push({what: args.join(' '), r})
      expect(r.code, `tilesync ${args.join(' ')}: ${r.stdout}${r.stderr}`).to.equal(0)
      return r
    }
    const refused = async (cwd: string, args: string[], env: NodeJS.ProcessEnv = wrong): Promise<CliRun> => {
      const r = await run(cwd, args, env)
      outputs.push({what: args.join(' '), r})
      expect(r.code, `tilesync ${args.join(' ')} should fail: ${r.stdout}${r.stderr}`).to.equal(1)
      return r
    }

    await ok(dir, ['init'])
    await ok(dir, ['commit', '-m', 'first'])
    await ok(dir, ['remote', 'add', 'aws', `s3://vault/${prefix}/aws`, '--endpoint', server.endpoint])
    await ok(dir, ['remote', 'add', 'r2', `r2://vault/${prefix}/r2`, '--endpoint', server.endpoint])
    await ok(dir, ['remote', 'add', 'hub', `oxen://team/${prefix}`, '--host', hub.host])
    await ok(dir, ['remote', 'verify', 'aws'])
    await ok(dir, ['remote', 'verify', 'r2'])
    for (const remote of ['aws', 'r2', 'hub']) await ok(dir, ['push', remote, 'main'])
    setGeneration(db, 0, 0, 31337)
    await ok(dir, ['commit', '-m', 'second'])
    for (const remote of ['aws', 'r2', 'hub']) await ok(dir, ['push', remote, 'main'])
    for (const remote of ['aws', 'r2', 'hub']) await ok(dir, ['fetch', remote])
    await ok(dir, ['fsck', '--remote', 'aws'])
    await ok(dir, ['fsck', '--remote', 'r2'])
    await ok(dir, ['prune', 'aws', '--keep-last', '1', '--dry-run'])
    const clones = [path.join(tmpDir('c'), 'aws'), path.join(tmpDir('c'), 'r2')]
    await ok(path.dirname(clones[0]), ['clone', `s3://vault/${prefix}/aws`, clones[0], '--endpoint', server.endpoint])
    await ok(path.dirname(clones[1]), ['clone', `r2://vault/${prefix}/r2`, clones[1], '--endpoint', server.endpoint])
    await ok(clones[0], ['pull'])
    await ok(clones[0], ['fsck'])

    // Credentials from a .env file in the working directory: used, never copied.
    fs.writeFileSync(path.join(clones[1], '.env'), `R2_ACCESS_KEY_ID=${S3RVER_KEY}\nR2_SECRET_ACCESS_KEY=${R2_SECRET}\n`)
    await ok(clones[1], ['fetch'], {R2_ACCESS_KEY_ID: undefined, R2_SECRET_ACCESS_KEY: undefined})

    // Wrong credentials: refused in one line that names the variable, never a value.
    for (const args of [['push', 'aws', 'main'], ['fetch', 'r2'], ['fsck', '--remote', 'aws'], ['prune', 'r2', '--keep-last', '1'], ['fetch', 'hub']]) {
      const r = await refused(dir, args)
      expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(1)
      if (!args.includes('hub')) expect(r.stderr).to.match(/(AWS|R2)_ACCESS_KEY_ID/)
    }
    const badVerify = await refused(dir, ['remote', 'verify'])
    expect(badVerify.stdout).to.match(/FAILED/)
    await refused(path.dirname(clones[0]), ['clone', `s3://vault/${prefix}/aws`, path.join(tmpDir('c'), 'denied'), '--endpoint', server.endpoint])
    // Missing credentials name what to set.
    const missing = await refused(dir, ['push', 'aws', 'main'], {AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, OXEN_API_TOKEN: undefined})
    expect(missing.stderr).to.include('AWS_ACCESS_KEY_ID')

    const files = [dir, ...clones].flatMap((d) => filesUnder(path.join(d, '.tilesync')))
    expect(files.some((f) => f.endsWith('sync-log.jsonl'))).to.equal(true)
    for (const secret of CANARIES) {
      for (const {what, r} of outputs) {
        expect(r.stdout.includes(secret) || r.stderr.includes(secret), `${secret} printed by tilesync ${what}`).to.equal(false)
      }
      for (const f of files) expect(fs.readFileSync(f).includes(secret), `${secret} in ${f}`).to.equal(false)
    }
  })
})
