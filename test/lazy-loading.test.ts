import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import {tmpDir} from './support/fixtures.js'

/**
 * Every module a fresh process loads when it imports `modules` (resolved URLs, in order), as
 * recorded by a module resolve hook in that process.
 */
function modulesLoadedBy(modules: string[]): string[] {
  const log = path.join(tmpDir('lazy'), 'loaded.txt')
  const hook = `import {appendFileSync} from 'node:fs'
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context)
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n')
  return r
}`
  const script = `import {register} from 'node:module'
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}))
for (const m of ${JSON.stringify(modules)}) await import(m)`
  execFileSync(process.execPath, ['--input-type=module', '-e', script])
  return fs.readFileSync(log, 'utf8').split('\n').filter(Boolean)
}

const here = path.dirname(fileURLToPath(import.meta.url))
const moduleUrl = (rel: string): string => new URL(`file://${path.join(here, '..', 'src', rel)}`).href

describe('heavy modules load only when a command needs them', () => {
  it('push, pull, fetch, clone and fsck load neither the oxen transport nor the AWS SDK until such a remote is used', () => {
    const loaded = modulesLoadedBy(['ops/push.js', 'ops/pull.js', 'ops/fetch.js', 'ops/clone.js', 'ops/fsck.js'].map(moduleUrl))
    expect(loaded.some((u) => u.endsWith('/src/ops/push.js')), 'the hook sees the imports').to.equal(true)
    expect(loaded.filter((u) => u.includes('/src/remote/oxen/') || u.includes('/src/dataset/'))).to.deep.equal([])
    expect(loaded.filter((u) => u.includes('@aws-sdk') || u.includes('/src/remote/s3/'))).to.deep.equal([])
  })
})
