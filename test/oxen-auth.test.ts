import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {isTilesyncError, type TilesyncError} from '../src/core/errors.js'
import {OxenClient} from '../src/remote/oxen/oxen-client.js'
import {oxenConfigDir, readOxenIdentity, resolveOxenToken} from '../src/remote/oxen/oxen-auth.js'
import {resolveOxenOrigin} from '../src/remote/oxen/oxen-origin.js'
import {sameOxenHash, xxh3_128Hex} from '../src/dataset/xxh3.js'
import {startOxenHub} from './support/oxen-hub.js'
import {tmpDir} from './support/fixtures.js'

const SECRET = 'cfgtok-FAKE-31c8a0e2'

async function failure(p: Promise<unknown>): Promise<TilesyncError> {
  try {
    await p
  } catch (err) {
    if (isTilesyncError(err)) return err
    throw err
  }
  throw new Error('expected a TilesyncError')
}

function configDir(files: Record<string, string>): string {
  const dir = tmpDir('oxen-config')
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text)
  return dir
}

const AUTH = `default_host = "hub.oxen.ai"

[[host_configs]]
host = "hub.oxen.ai"
auth_token = "${SECRET}"

[[host_configs]]
host = "127.0.0.1:3000"
auth_token = "local-${SECRET}"
`

describe('oxen token and identity', () => {
  it('prefers OXEN_API_TOKEN, else matches host_configs by exact host and port', async () => {
    const dir = configDir({'auth_config.toml': AUTH})
    expect(await resolveOxenToken('hub.oxen.ai', {OXEN_API_TOKEN: 'from-env', OXEN_CONFIG_DIR: dir})).to.equal('from-env')
    expect(await resolveOxenToken('hub.oxen.ai', {OXEN_CONFIG_DIR: dir})).to.equal(SECRET)
    expect(await resolveOxenToken('127.0.0.1:3000', {OXEN_CONFIG_DIR: dir})).to.equal(`local-${SECRET}`)
    const other = await failure(resolveOxenToken('127.0.0.1:3001', {OXEN_CONFIG_DIR: dir}))
    expect(other.code).to.equal('REMOTE_AUTH')
    expect(other.oneLine).to.contain('OXEN_API_TOKEN').and.contain('127.0.0.1:3001')
    expect(other.oneLine).to.not.contain(SECRET)
  })

  it('says which variable to set when there is no config at all', async () => {
    const err = await failure(resolveOxenToken('hub.oxen.ai', {OXEN_CONFIG_DIR: tmpDir('empty-oxen')}))
    expect(err.code).to.equal('REMOTE_AUTH')
    expect(err.oneLine).to.contain('OXEN_API_TOKEN')
  })

  it('reports broken TOML by file and line, never quoting the token', async () => {
    const dir = configDir({'auth_config.toml': `[[host_configs]]\nhost = "hub.oxen.ai"\nauth_token = "${SECRET}\n`})
    const err = await failure(resolveOxenToken('hub.oxen.ai', {OXEN_CONFIG_DIR: dir}))
    expect(err.code).to.equal('BAD_CONFIG')
    expect(err.message).to.contain('auth_config.toml').and.contain('line 3')
    expect(JSON.stringify({m: err.message, h: err.hint, s: err.stack})).to.not.contain(SECRET)
  })

  it('reads identity from OXEN_USER_* first, then user_config.toml, field by field', async () => {
    const dir = configDir({'user_config.toml': 'name = "File Name"\nemail = "file@example.com"\n'})
    expect(await readOxenIdentity({OXEN_CONFIG_DIR: dir})).to.deep.equal({name: 'File Name', email: 'file@example.com'})
    expect(await readOxenIdentity({OXEN_CONFIG_DIR: dir, OXEN_USER_NAME: 'Env Name'})).to.deep.equal({name: 'Env Name', email: 'file@example.com'})
    expect(await readOxenIdentity({OXEN_CONFIG_DIR: tmpDir('no-user'), OXEN_USER_NAME: 'Only Name'})).to.equal(null)
    expect(oxenConfigDir({OXEN_CONFIG_DIR: dir})).to.equal(dir)
  })

  it('opens a client with the token from auth_config.toml and uses it', async () => {
    const hub = await startOxenHub({token: `hubtok-${SECRET}`})
    try {
      const dir = configDir({'auth_config.toml': `[[host_configs]]\nhost = "${hub.host}"\nauth_token = "hubtok-${SECRET}"\n`})
      const c = await OxenClient.open({namespace: 'ns', repo: 'repo', host: hub.host, env: {OXEN_CONFIG_DIR: dir}})
      expect(c.location).to.equal(`${hub.host}/ns/repo`)
      expect((await c.createRepo()).name).to.equal('repo')
    } finally {
      await hub.close()
    }
  })
})

describe('oxen hosts and hashes', () => {
  it('uses https except for local hosts, and refuses plain http elsewhere', () => {
    expect(resolveOxenOrigin()).to.deep.equal({origin: 'https://hub.oxen.ai', host: 'hub.oxen.ai'})
    expect(resolveOxenOrigin('oxen.example.com:8443')).to.deep.equal({origin: 'https://oxen.example.com:8443', host: 'oxen.example.com:8443'})
    expect(resolveOxenOrigin('127.0.0.1:3000')).to.deep.equal({origin: 'http://127.0.0.1:3000', host: '127.0.0.1:3000'})
    expect(resolveOxenOrigin('http://localhost:3000')).to.deep.equal({origin: 'http://localhost:3000', host: 'localhost:3000'})
    for (const bad of ['http://hub.oxen.ai', 'ftp://127.0.0.1', 'https://hub.oxen.ai/api', 'https://u:p@hub.oxen.ai']) {
      expect(() => resolveOxenOrigin(bad), bad).to.throw().with.property('code', 'BAD_ARGUMENT')
    }
  })

  it('computes XXH3-128 as oxen prints it: lowercase hex, leading zeros stripped', () => {
    expect(xxh3_128Hex(Buffer.alloc(0))).to.equal('99aa06d3014798d86001c324468d497f')
    expect(xxh3_128Hex(Buffer.from('a'))).to.equal('a96faf705af16834e6c632b61e964e1f')
    // "abc" hashes to 06b05ab6...: the leading zero goes.
    expect(xxh3_128Hex(Buffer.from('abc'))).to.equal('6b05ab6733a618578af5f94892f3950')
    expect(sameOxenHash('06B05AB6733A618578AF5F94892F3950', '6b05ab6733a618578af5f94892f3950')).to.equal(true)
    expect(sameOxenHash('1', '2')).to.equal(false)
  })
})
