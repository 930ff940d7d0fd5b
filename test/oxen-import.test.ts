import {expect} from 'chai'
import {execFileSync, spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {isTilesyncError} from '../src/core/errors.js'
import {commit} from '../src/ops/commit.js'
import {importRemote} from '../src/ops/import-remote.js'
import {initRepository} from '../src/ops/init.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {status} from '../src/ops/status.js'
import type {OxenTuning} from '../src/remote/oxen/oxen-transport.js'
import {Workspace} from '../src/workspace/workspace.js'
import {BIN, type CliRun, REPO_ROOT} from './support/cli.js'
import {setGeneration, setNotes} from './support/edit.js'
import {dumpDatabase, makeProject, png, tmpDir, withDb} from './support/fixtures.js'
import {type OxenHub, startOxenHub} from './support/oxen-hub.js'

/**
 * `tilesync import oxen://NS/REPO[@BRANCH]`: a dataset the user's earlier export script wrote
 * (no tilesync sidecar), imported by tile coordinates into the working database.
 */

const NS = 'tiles'
const author = {name: 'Ada Tiler', email: 'ada@example.com'}
let hub: OxenHub
let counter = 0

before(async () => {
  hub = await startOxenHub()
})
after(async () => {
  await hub.close()
})

const tuning = (): OxenTuning => ({token: hub.token, backoffMs: 5, env: {}})

/** The folder the seed's export script writes for `db`, as files (path -> bytes). */
function seedExport(db: string): Map<string, Buffer> {
  const out = path.join(tmpDir('seed-export'), 'ds')
  execFileSync('python3', [path.join(REPO_ROOT, 'test', 'support', 'seed_export.py'), db, out])
  const files = new Map<string, Buffer>()
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(out, rel), {withFileTypes: true})) {
      const p = rel ? `${rel}/${e.name}` : e.name
      if (e.isDirectory()) walk(p)
      else files.set(p, fs.readFileSync(path.join(out, p)))
    }
  }
  walk('')
  return files
}

/** A hub repository holding `files` on `branch`, committed straight onto the hub as the seed's script would. */
function publish(files: Map<string, Buffer>, branch = 'main', repo = `seed-${++counter}`): string {
  hub.commitDirect(NS, repo, branch, Object.fromEntries(files), 'Export quadrants from v01')
  return repo
}

const row = (db: string, x: number, y: number) => withDb(db, (d) => d.prepare('SELECT render, generation, notes, lat FROM quadrants WHERE quadrant_x = ? AND quadrant_y = ?').get(x, y) as {render: Buffer | null; generation: Buffer | null; notes: string | null; lat: number} | undefined)

async function project(): Promise<{ws: Workspace; db: string; dir: string}> {
  const {dir, db} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  return {ws, db, dir}
}

function cli(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd, env: {...process.env, TILESYNC_AUTHOR_NAME: 'Cli', TILESYNC_AUTHOR_EMAIL: 'cli@example.com', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? -1, stdout, stderr}))
  })
}

describe('import oxen://: datasets the user\'s earlier export script wrote', function () {
  this.timeout(120_000)

  it('updates only the tiles whose MD5 differs, by (x, y), negative coordinates included, downloading just those images', async () => {
    const {ws, db} = await project()
    const original = {a: row(db, -3, -2)!, b: row(db, 1, 1)!}
    const files = seedExport(db)
    expect(files.has('generations.csv')).to.equal(true)
    expect([...files.keys()].some((p) => p.startsWith('quadrants/-003_-002_'))).to.equal(true)
    expect(files.get('generations.csv')!.toString().split('\r\n')[0]).to.equal('render,quadrant,x,y,hash_render,hash_quadrant')
    const repo = publish(files)

    // Local work since the export: a new generation at -3,-2, a render cleared at 1,1, the
    // tile 2,2 deleted, and a note on 0,0 that the import must leave alone.
    setGeneration(db, -3, -2, 5001)
    withDb(db, (d) => d.prepare('UPDATE quadrants SET render = NULL WHERE quadrant_x = 1 AND quadrant_y = 1').run())
    withDb(db, (d) => d.prepare('DELETE FROM quadrants WHERE quadrant_x = 2 AND quadrant_y = 2').run())
    setNotes(db, 0, 0, 'kept locally')
    await commit(ws, {message: 'local work', author})
    const before = dumpDatabase(db)

    // --dry-run: what would change, after reading generations.csv only.
    hub.resetLog()
    const dry = await importRemote(ws, {source: `oxen://${NS}/${repo}`, dryRun: true, remote: {host: hub.host}, transport: tuning()})
    expect(hub.count('GET', /\/file\//)).to.equal(1)
    expect(dry).to.include({dryRun: true, layout: 'xy', sidecar: false, updated: 2, created: 0})
    expect(dry.files.downloaded).to.equal(2)
    expect(dry.notCreated.map((t) => [t.x, t.y])).to.deep.equal([['2', '2']])
    expect(dumpDatabase(db)).to.deep.equal(before)

    hub.resetLog()
    const r = await importRemote(ws, {source: `oxen://${NS}/${repo}@main`, remote: {host: hub.host}, transport: tuning()})
    expect(r).to.include({layout: 'xy', branch: 'main', updated: 2, created: 0, rowsWritten: 2})
    expect(r.files.downloaded).to.equal(2)
    expect(hub.count('GET', /\/file\//)).to.equal(1 + 2)
    // 2,2 has NOT NULL columns without defaults (lat, lng, ...): listed, not made up.
    expect(r.notCreated.map((t) => [t.x, t.y])).to.deep.equal([['2', '2']])
    expect(r.notCreated[0].reason).to.match(/NOT NULL without a default: lat, lng/)
    expect(row(db, -3, -2)!.generation!.equals(original.a.generation!)).to.equal(true)
    expect(row(db, 1, 1)!.render!.equals(original.b.render!)).to.equal(true)
    expect(row(db, 0, 0)!.notes).to.equal('kept locally')
    expect(row(db, 2, 2)).to.equal(undefined)
    // Left for the user to review and commit.
    const st = await status(ws)
    expect(st.clean).to.equal(false)

    // Committed and run again: everything already equal, nothing downloaded or written.
    await commit(ws, {message: 'imported', author})
    const again = await importRemote(ws, {source: `oxen://${NS}/${repo}`, remote: {host: hub.host}, transport: tuning()})
    expect([again.files.downloaded, again.updated, again.rowsWritten]).to.deep.equal([0, 0, 0])
  })

  it('refuses a tampered file (its bytes do not match the MD5 in its name) and writes nothing', async () => {
    const {ws, db} = await project()
    const files = seedExport(db)
    const repo = publish(files, 'tampered')
    setGeneration(db, -1, -1, 6001)
    setGeneration(db, 0, 1, 6002)
    await commit(ws, {message: 'local', author})
    const victim = [...files.keys()].find((p) => p.startsWith('quadrants/-001_-001_'))!
    hub.tamperFile(NS, repo, victim, png(6003), 'tampered')
    const before = dumpDatabase(db)
    let err: unknown
    try {
      await importRemote(ws, {source: `oxen://${NS}/${repo}@tampered`, remote: {host: hub.host}, transport: tuning()})
    } catch (e) {
      err = e
    }
    expect(isTilesyncError(err, 'BAD_DATASET'), String(err)).to.equal(true)
    expect((err as Error).message).to.contain(victim).and.contain('does not match the MD5 hash in its name')
    expect(dumpDatabase(db)).to.deep.equal(before)
  })

  it('creates the tiles a database lacks where every other NOT NULL column has a default', async () => {
    const {db: source} = makeProject()
    const files = seedExport(source)
    const repo = publish(files)
    const dir = tmpDir('defaults')
    const db = path.join(dir, 'generations', 'v01', 'quadrants.db')
    fs.mkdirSync(path.dirname(db), {recursive: true})
    withDb(db, (d) => d.exec(`CREATE TABLE quadrants (quadrant_x INTEGER NOT NULL, quadrant_y INTEGER NOT NULL, lat REAL NOT NULL DEFAULT 0,
      render BLOB, generation BLOB, notes TEXT, PRIMARY KEY (quadrant_x, quadrant_y))`))
    await initRepository({dir})
    const ws = await Workspace.open(dir)
    const r = await importRemote(ws, {source: `oxen://${NS}/${repo}`, remote: {host: hub.host}, transport: tuning()})
    const tiles = files.get('generations.csv')!.toString().trim().split('\r\n').length - 1
    expect([r.created, r.updated, r.notCreated.length]).to.deep.equal([tiles, 0, 0])
    const got = withDb(db, (d) => d.prepare('SELECT quadrant_x AS x, quadrant_y AS y, generation, lat FROM quadrants WHERE quadrant_x = -3 AND quadrant_y = -2').get() as {generation: Buffer | null; lat: number})
    expect(got.lat).to.equal(0)
    expect(row(source, -3, -2)!.generation?.equals(got.generation!) ?? got.generation === null).to.equal(true)
  })

  it('imports a tilesync dataset whose history this repository does not share, by coordinates', async () => {
    const other = await project()
    const repo = `sidecar-${++counter}`
    await addRemote(other.ws.repo, 'hub', `oxen://${NS}/${repo}`, {host: hub.host})
    setGeneration(other.db, -2, 0, 7001)
    await commit(other.ws, {message: 'theirs', author})
    await push(other.ws, {remote: 'hub', transport: tuning()})
    const {ws, db} = await project()
    const r = await importRemote(ws, {source: `oxen://${NS}/${repo}`, remote: {host: hub.host}, transport: tuning()})
    expect(r).to.include({sidecar: true, updated: 1, rowsWritten: 1})
    expect(row(db, -2, 0)!.generation!.equals(row(other.db, -2, 0)!.generation!)).to.equal(true)
  })

  it('the CLI: import REMOTE --dry-run --json for a configured oxen remote, then import it; bad input is one line', async () => {
    const {ws, db, dir} = await project()
    const repo = publish(seedExport(db))
    setGeneration(db, 0, 0, 8001)
    await commit(ws, {message: 'local', author})
    await addRemote(ws.repo, 'hub', `oxen://${NS}/${repo}`, {host: hub.host})
    const env = {OXEN_API_TOKEN: hub.token, OXEN_CONFIG_DIR: tmpDir('oxen-config')}
    const dry = await cli(dir, ['import', 'hub', '--dry-run', '--json'], env)
    expect(dry.code, dry.stderr).to.equal(0)
    expect(JSON.parse(dry.stdout)).to.include({dryRun: true, updated: 1, branch: 'main'})
    const run = await cli(dir, ['import', 'hub'], env)
    expect(run.code, run.stderr).to.equal(0)
    expect(run.stdout).to.match(/Imported .*: \d+ tiles listed; 1 updated, 0 added/)
    expect(run.stdout).to.contain('tilesync commit')
    const missing = await cli(dir, ['import', 'hub@nowhere'], env)
    expect(missing.code).to.equal(1)
    expect(missing.stderr.trim().split('\n')).to.have.length(1)
    expect(missing.stderr).to.match(/no branch nowhere/)
  })
})

describe('import oxen://: the pipeline\'s own export', function () {
  this.timeout(120_000)

  it('reuses the folder import of the pipeline layout: generations set by (x, y), generation_config stored, only differing images downloaded', async () => {
    const {ws, db} = await project()
    const out = path.join(tmpDir('pipeline-export'), 'ds')
    execFileSync('python3', [path.join(REPO_ROOT, 'test', 'support', 'pipeline_export.py'), db, out])
    const files = new Map<string, Buffer>()
    for (const name of fs.readdirSync(out)) if (fs.statSync(path.join(out, name)).isFile()) files.set(name, fs.readFileSync(path.join(out, name)))
    for (const name of fs.readdirSync(path.join(out, 'generations'))) files.set(`generations/${name}`, fs.readFileSync(path.join(out, 'generations', name)))
    files.set('generation_config.json', Buffer.from('{"model":"from-the-hub"}'))
    const repo = publish(files)
    const original = row(db, -3, -1)!.generation!
    setGeneration(db, -3, -1, 9001)
    await commit(ws, {message: 'local', author})
    hub.resetLog()
    const r = await importRemote(ws, {source: `oxen://${NS}/${repo}`, remote: {host: hub.host}, transport: tuning()})
    expect(r).to.include({layout: 'pipeline', updated: 1, created: 0, generationConfig: true})
    expect(r.files.downloaded).to.equal(1)
    // generations.csv, generation_config.json, bounds.json if any, and the one image.
    expect(hub.count('GET', /\/file\/.*\/generations\//)).to.equal(1)
    expect(row(db, -3, -1)!.generation!.equals(original)).to.equal(true)
    const config = withDb(db, (d) => d.prepare("SELECT value FROM metadata WHERE key = 'generation_config'").get() as {value: string})
    expect(config.value).to.equal('{"model":"from-the-hub"}')
  })
})
