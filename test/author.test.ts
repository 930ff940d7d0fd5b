import {expect} from 'chai'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import {defaultAuthor, parseAuthor} from '../src/util/author.js'
import {tmpDir} from './support/fixtures.js'

/** An environment whose only git config is `text` (no system file, no repository). */
function gitEnv(text: string): NodeJS.ProcessEnv {
  const dir = tmpDir('author')
  fs.writeFileSync(path.join(dir, 'gitconfig'), text)
  return {PATH: process.env.PATH, HOME: dir, GIT_CONFIG_GLOBAL: path.join(dir, 'gitconfig'), GIT_CONFIG_NOSYSTEM: '1', GIT_DIR: path.join(dir, 'no-repo')}
}

describe('commit author', () => {
  it('comes from git config, name and email read in one go', async () => {
    const env = gitEnv('[user]\n\tname = Ada Lovelace\n\temail = ada@example.com\n')
    expect(await defaultAuthor(env)).to.deep.equal({name: 'Ada Lovelace', email: 'ada@example.com'})
  })

  it('TILESYNC_AUTHOR_* and GIT_AUTHOR_* come first; what git lacks falls back to the OS user', async () => {
    const env = gitEnv('[user]\n\tname = From Git\n')
    expect(await defaultAuthor({...env, TILESYNC_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 'g@example.com'})).to.deep.equal({name: 'T', email: 'g@example.com'})
    const partial = await defaultAuthor(env)
    expect(partial.name).to.equal('From Git')
    expect(partial.email).to.equal(`${os.userInfo().username}@${os.hostname()}`)
    expect(await defaultAuthor(gitEnv(''))).to.deep.equal({name: os.userInfo().username, email: `${os.userInfo().username}@${os.hostname()}`})
  })

  it('--author must look like "Name <email>"', () => {
    expect(parseAuthor('Ada <ada@example.com>')).to.deep.equal({name: 'Ada', email: 'ada@example.com'})
    expect(() => parseAuthor('ada@example.com')).to.throw(/Name <email>/)
  })
})
