import {expect} from 'chai'
import * as path from 'node:path'

import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {fetchRemote} from '../src/ops/fetch.js'
import {initRepository} from '../src/ops/init.js'
import {pull} from '../src/ops/pull.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {readSyncLog, type SyncLogEntry} from '../src/ops/sync-log.js'
import {Workspace} from '../src/workspace/workspace.js'
import {cli, cliJson} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {makeProject, tmpDir} from './support/fixtures.js'

const author = {name: 'Tester', email: 't@example.com'}

describe('sync log: every push, pull, fetch and clone in .tilesync/sync-log.jsonl; tilesync remote log', function () {
  this.timeout(120_000)

  it('records outcomes, a refused push with its error, and shows them', async () => {
    const {dir, db} = makeProject()
    await initRepository({dir})
    const a = await Workspace.open(dir)
    await commit(a, {message: 'first', author})
    const remote = path.join(tmpDir('log-remote'), 'tiles')
    await addRemote(a.repo, 'origin', remote)
    const dry = await push(a, {dryRun: true})
    const first = await push(a, {})

    const bDir = path.join(tmpDir('log-clone'), 'b')
    const cloned = await clone({url: remote, dir: bDir})
    const b = await Workspace.open(bDir)
    const bDb = path.join(bDir, cloned.database)

    setGeneration(db, 0, 0, 111)
    await commit(a, {message: 'a edits 0,0', author})
    const second = await push(a, {})
    setGeneration(bDb, 1, 1, 222)
    await commit(b, {message: 'b edits 1,1', author})
    const bHead = await b.repo.refs.headCommit()
    try {
      await push(b, {})
      expect.fail('pushed over a moved remote')
    } catch (error) {
      expect((error as {code?: string}).code).to.equal('REMOTE_MOVED')
    }
    const pulled = await pull(b, {})
    expect(pulled.merge?.outcome).to.equal('merged')
    const pushed = await push(b, {})
    await fetchRemote(a, {})

    const t0 = Date.now()
    const isTime = (e: SyncLogEntry): boolean => !Number.isNaN(Date.parse(e.time)) && Date.parse(e.time) <= t0 && e.durationMs >= 0
    const aLog = await readSyncLog(a.repo)
    expect(aLog.every(isTime)).to.equal(true)
    expect(aLog.map((e) => [e.op, e.remote, e.branch, e.from, e.to, e.objects, e.bytes, e.result])).to.deep.equal([
      ['push', 'origin', 'main', null, first.to, dry.objects, dry.bytes, 'dry-run'],
      ['push', 'origin', 'main', null, first.to, first.objects, first.bytes, 'ok'],
      ['push', 'origin', 'main', first.to, second.to, second.objects, second.bytes, 'ok'],
      ['fetch', 'origin', 'main', second.to, pushed.to, aLog[3].objects, aLog[3].bytes, 'ok'],
    ])
    expect(aLog[3].objects).to.be.greaterThan(0)

    const bLog = await readSyncLog(b.repo)
    expect(bLog.every(isTime)).to.equal(true)
    expect(bLog.map((e) => [e.op, e.result])).to.deep.equal([['clone', 'ok'], ['push', 'error'], ['pull', 'ok'], ['push', 'ok']])
    expect(bLog[0]).to.include({remote: 'origin', branch: 'main', from: null, to: first.to, objects: cloned.objects, bytes: cloned.bytes})
    expect(bLog[1]).to.include({remote: 'origin', branch: 'main'})
    expect(bLog[1].error).to.match(/^remote moved: origin\/main has commits you do not have; pull first/)
    expect(bLog[2]).to.include({from: bHead, to: pulled.merge!.head, objects: pulled.objects, bytes: pulled.bytes})
    expect(bLog[3]).to.include({from: second.to, to: pushed.to, objects: pushed.objects})

    // The same through the CLI: a refused push is recorded with its error and shown.
    expect(cli(dir, ['pull']).code).to.equal(0)
    setGeneration(db, 2, 2, 333)
    cli(dir, ['commit', '-m', 'a again'])
    expect(cli(dir, ['push']).code).to.equal(0)
    setGeneration(bDb, -1, -1, 444)
    cli(bDir, ['commit', '-m', 'b again'])
    const refused = cli(bDir, ['push'])
    expect(refused.code).to.equal(1)
    const last = cli(bDir, ['remote', 'log', '-n', '1'])
    expect(last.code).to.equal(0)
    expect(last.stdout.trim()).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  push +origin\/main  .*error: remote moved: origin\/main has commits you do not have; pull first/)
    const all = cli(bDir, ['remote', 'log'])
    expect(all.stdout.trim().split('\n').map((l) => l.split(/\s+/)[2])).to.deep.equal(['clone', 'push', 'pull', 'push', 'push'])
    expect(all.stdout).to.match(/clone +origin\/main +none -> [0-9a-f]{10} +\d+ objects, [\d.]+ KiB +\d+ ms +ok/)
    const json = cliJson<{entries: SyncLogEntry[]}>(bDir, ['remote', 'log', 'origin'])
    expect(json.entries.map((e) => e.result)).to.deep.equal(['ok', 'error', 'ok', 'ok', 'error'])
    expect(json.entries[4].error).to.contain('remote moved')
    const none = cli(bDir, ['remote', 'log', 'elsewhere'])
    expect(none.stdout.trim()).to.equal('Nothing recorded for remote "elsewhere".')
  })
})
