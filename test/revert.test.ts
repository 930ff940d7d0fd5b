import {expect} from 'chai'
import {createHash} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {computeChangeSet} from '../src/snapshot/change-set.js'
import {commit} from '../src/ops/commit.js'
import {initRepository} from '../src/ops/init.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {abortRevert, resolveRevert, revert, revertStatus} from '../src/ops/revert.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {cli, cliJson} from './support/cli.js'
import {generationOf, setGeneration, setNotes} from './support/edit.js'
import {dumpDatabase, makeProject, png, tmpDir, withDb} from './support/fixtures.js'

const author = {name: 'Tester', email: 't@example.com'}

function setRender(db: string, x: number, y: number, seed: number): void {
  withDb(db, (d) => d.prepare('UPDATE quadrants SET render = ? WHERE quadrant_x = ? AND quadrant_y = ?').run(png(seed), x, y))
}

function renderOf(db: string, x: number, y: number): Buffer | null {
  return withDb(db, (d) => (d.prepare('SELECT render FROM quadrants WHERE quadrant_x = ? AND quadrant_y = ?').get(x, y) as {render: Buffer | null}).render)
}

function notesOf(db: string, x: number, y: number): string | null {
  return withDb(db, (d) => (d.prepare('SELECT notes FROM quadrants WHERE quadrant_x = ? AND quadrant_y = ?').get(x, y) as {notes: string | null}).notes)
}

/** Every file of the project (store, refs, reflogs, state files, database) by content hash; the lock file aside. */
function fileState(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const e of fs.readdirSync(dir, {withFileTypes: true, recursive: true})) {
    if (!e.isFile()) continue
    const p = path.join(e.parentPath, e.name)
    const rel = path.relative(dir, p)
    if (rel === path.join('.tilesync', 'lock')) continue
    out[rel] = createHash('sha256').update(fs.readFileSync(p)).digest('hex')
  }
  return out
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p
  } catch (error) {
    expect((error as {code?: string}).code, (error as Error).message).to.equal(code)
    return
  }
  expect.fail(`expected ${code}`)
}

/**
 * A: the generated tiles. B: generation of 0,0 and 1,1, notes of 2,2. C (later): render of
 * 1,1 (another layer of a tile B changed) and generation of -2,1.
 */
async function history(): Promise<{dir: string; db: string; ws: Workspace; a: string; b: string; c: string; dumpA: ReturnType<typeof dumpDatabase>}> {
  const {dir, db} = makeProject()
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  const a = (await commit(ws, {message: 'A: first', author})).id!
  const dumpA = dumpDatabase(db)
  setGeneration(db, 0, 0, 1001)
  setGeneration(db, 1, 1, 1002)
  setNotes(db, 2, 2, 'checked by B')
  const b = (await commit(ws, {message: 'B: two generations and a note', author})).id!
  setRender(db, 1, 1, 1003)
  setGeneration(db, -2, 1, 1004)
  const c = (await commit(ws, {message: 'C: a render and a generation', author})).id!
  return {dir, db, ws, a, b, c, dumpA}
}

describe('revert', function () {
  this.timeout(120_000)

  it('reverting a middle commit undoes exactly its tiles and layers, keeps the later ones, and pushes without --force', async () => {
    const {db, ws, a, b, c} = await history()
    const remote = path.join(tmpDir('revert-remote'), 'tiles')
    await addRemote(ws.repo, 'origin', remote)
    await push(ws, {})

    const r = await revert(ws, {revision: 'HEAD~1'})
    expect(r.outcome).to.equal('committed')
    expect(r.revision).to.equal(b)
    const head = r.head!
    const made = await ws.reader.commit(head)
    expect(made.parents, 'one parent: history stays linear').to.deep.equal([c])
    expect(made.message).to.match(/^Revert "B: two generations and a note"/)
    expect(made.message).to.include(b)

    // Against C, the revert changes B's cells and nothing else.
    const undone = await computeChangeSet(await ws.stateOf(c), await ws.stateOf(head), ws.reader)
    expect(undone.tiles.map((t) => [t.x, t.y, t.layers.map((l) => l.layer), t.columns])).to.deep.equal([
      [0, 0, ['generation'], []],
      [1, 1, ['generation'], []],
      [2, 2, [], ['notes']],
    ])
    expect(undone.tables.filter((t) => !t.isTileTable)).to.deep.equal([])
    // Each undone cell is A's again; C's changes, one of them on a tile B touched, stay.
    const atA = await computeChangeSet(await ws.stateOf(a), await ws.stateOf(head), ws.reader)
    expect(atA.tiles.map((t) => [t.x, t.y, t.layers.map((l) => l.layer), t.columns])).to.deep.equal([
      [-2, 1, ['generation'], []],
      [1, 1, ['render'], []],
    ])
    expect(renderOf(db, 1, 1)).to.deep.equal(png(1003))
    expect(generationOf(db, -2, 1)).to.deep.equal(png(1004))
    expect(generationOf(db, 0, 0)).to.not.deep.equal(png(1001))
    expect(notesOf(db, 2, 2)).to.not.equal('checked by B')
    expect((await status(ws)).clean, 'the database holds the revert commit').to.equal(true)
    expect(await ws.repo.refs.headCommit()).to.equal(head)

    // The remote has C; the revert is a plain fast-forward on top of it.
    const pushed = await push(ws, {})
    expect(pushed.commits).to.equal(1)
    expect(fs.readFileSync(path.join(remote, 'refs', 'heads', 'main'), 'utf8').trim()).to.equal(head)
    expect(fs.existsSync(ws.repo.layout.mergeState)).to.equal(false)
  })

  it('a revert whose HEAD move was lost (crash after the database write) completes when run again, writing nothing', async () => {
    const {db, ws, b, c} = await history()
    const first = await revert(ws, {revision: b})
    const result = dumpDatabase(db)
    // What a crash between the database write and the HEAD move leaves: the database at the
    // revert's result, HEAD still at C.
    await ws.repo.refs.updateHead(c, 'simulated crash', first.head!)
    const again = await revert(ws, {revision: b})
    expect(again.outcome).to.equal('committed')
    expect(again.rowsWritten).to.equal(0)
    expect((await ws.reader.commit(again.head!)).tree).to.equal((await ws.reader.commit(first.head!)).tree)
    expect(dumpDatabase(db)).to.deep.equal(result)
    expect((await status(ws)).clean).to.equal(true)
  })

  it('refuses the first commit, and says so in one line', async () => {
    const {ws, a} = await history()
    await expectCode(revert(ws, {revision: a}), 'BAD_ARGUMENT')
  })

  describe('a revert whose cells a later commit changed again stops with conflicts', () => {
    /** B changed 0,0 and 1,1 (and a note); D changes both tiles' generation again. */
    async function conflicted(): Promise<Awaited<ReturnType<typeof history>> & {d: string}> {
      const h = await history()
      setGeneration(h.db, 0, 0, 2001)
      setGeneration(h.db, 1, 1, 2002)
      const d = (await commit(h.ws, {message: 'D: 0,0 and 1,1 again', author})).id!
      return {...h, d}
    }

    it('the database is untouched, commit is refused, --status lists the conflicts and changes nothing', async () => {
      const {dir, db, ws, b, d} = await conflicted()
      const dbBefore = dumpDatabase(db)
      const r = await revert(ws, {revision: b})
      expect(r.outcome).to.equal('conflicts')
      expect(r.conflicts.map((c) => [c.x, c.y, c.columns])).to.deep.equal([[0, 0, ['generation']], [1, 1, ['generation']]])
      expect(dumpDatabase(db)).to.deep.equal(dbBefore)
      expect(await ws.repo.refs.headCommit()).to.equal(d)
      await expectCode(commit(ws, {message: 'x', author}), 'MERGE_IN_PROGRESS')
      await expectCode(revert(ws, {revision: b}), 'MERGE_IN_PROGRESS')

      const files = fileState(dir)
      const s = await revertStatus(ws)
      expect(s.outcome).to.equal('conflicts')
      expect(s.revision).to.equal(b)
      expect(s.conflicts.map((c) => [c.x, c.y])).to.deep.equal([[0, 0], [1, 1]])
      expect(fileState(dir), '--status writes nothing').to.deep.equal(files)
      const said = cli(dir, ['status'])
      expect(said.stdout).to.include('A revert is in progress: `tilesync revert --status`')
      expect(said.stdout).not.to.include('merge is in progress')
      expect(cliJson<{inProgress: string}>(dir, ['status']).inProgress).to.equal('revert')
    })

    it('--ours keeps the current values of the conflicting cells and undoes the rest', async () => {
      const {db, ws, b, d} = await conflicted()
      expect((await revert(ws, {revision: b})).outcome).to.equal('conflicts')
      const r = await resolveRevert(ws, 'ours')
      expect(r.outcome).to.equal('committed')
      expect((await ws.reader.commit(r.head!)).parents).to.deep.equal([d])
      expect(generationOf(db, 0, 0)).to.deep.equal(png(2001))
      expect(generationOf(db, 1, 1)).to.deep.equal(png(2002))
      expect(notesOf(db, 2, 2), 'B\'s note, not in conflict, is undone').to.not.equal('checked by B')
      expect(r.changes!.tiles.map((t) => [t.x, t.y, t.columns])).to.deep.equal([[2, 2, ['notes']]])
      expect(fs.existsSync(ws.repo.layout.mergeState)).to.equal(false)
      expect((await status(ws)).clean).to.equal(true)
    })

    it('--theirs (per tile, then all) takes the values from before the reverted commit', async () => {
      const {db, ws, a, b} = await conflicted()
      const original00 = (await revert(ws, {revision: b})).conflicts
      expect(original00).to.have.length(2)
      const partly = await resolveRevert(ws, 'theirs', [[0, 0]])
      expect(partly.outcome).to.equal('conflicts')
      expect(partly.conflicts.map((c) => [c.x, c.y])).to.deep.equal([[1, 1]])
      await expectCode(resolveRevert(ws, 'ours', [[4, 4]]), 'BAD_ARGUMENT')
      const r = await resolveRevert(ws, 'theirs')
      expect(r.outcome).to.equal('committed')
      // Both tiles' generation as A had them: the whole of B is undone, D's changes with it.
      const changed = await computeChangeSet(await ws.stateOf(a), await ws.stateOf(r.head!), ws.reader)
      expect(changed.tiles.map((t) => [t.x, t.y, t.layers.map((l) => l.layer)])).to.deep.equal([[-2, 1, ['generation']], [1, 1, ['render']]])
      expect(generationOf(db, 0, 0)).to.not.deep.equal(png(2001))
      expect((await status(ws)).clean).to.equal(true)
    })

    it('--abort leaves everything as before the revert', async () => {
      const {dir, db, ws, b, d} = await conflicted()
      const before = {files: fileState(dir), db: dumpDatabase(db)}
      expect((await revert(ws, {revision: b})).outcome).to.equal('conflicts')
      const r = await abortRevert(ws)
      expect(r.outcome).to.equal('aborted')
      expect(await ws.repo.refs.headCommit()).to.equal(d)
      expect(dumpDatabase(db)).to.deep.equal(before.db)
      expect(fs.existsSync(ws.repo.layout.mergeState)).to.equal(false)
      // Not a file differs: the conflicted revert kept its merged tree in memory, no ref or reflog moved.
      expect(fileState(dir)).to.deep.equal(before.files)
      await expectCode(abortRevert(ws), 'NO_MERGE')
    })

    it('from the command line: exit 1 with the conflicts, --status, --theirs --tile, --abort', async () => {
      const {dir, db, b} = await conflicted()
      const before = dumpDatabase(db)
      const r = cli(dir, ['revert', b])
      expect(r.code, r.stderr).to.equal(1)
      expect(r.stdout).to.include('2 conflict(s) remain; the database was not changed')
      expect(r.stdout).to.include('quadrants 0,0: generation (cells)')
      const s = cli(dir, ['revert', '--status'])
      expect(s.code).to.equal(0)
      expect(s.stdout).to.include('quadrants 1,1: generation (cells)')
      const t = cli(dir, ['revert', '--theirs', '--tile', '0,0'])
      expect(t.code).to.equal(1)
      expect(t.stdout).to.include('1 conflict(s) remain')
      const a = cli(dir, ['revert', '--abort'])
      expect(a.code, a.stderr).to.equal(0)
      expect(a.stdout).to.include('Revert aborted')
      expect(dumpDatabase(db)).to.deep.equal(before)
      const none = cli(dir, ['revert', '--status'])
      expect(none.code).to.equal(1)
      expect(none.stderr).to.match(/^tilesync: no merge or revert is in progress \(/)
    })
  })

  it('--to makes a commit on HEAD whose tables equal the revision\'s', async () => {
    const {db, ws, a, c, dumpA} = await history()
    const r = await revert(ws, {revision: a, mode: 'to'})
    expect(r.outcome).to.equal('committed')
    const made = await ws.reader.commit(r.head!)
    expect(made.parents).to.deep.equal([c])
    expect(made.tree).to.equal((await ws.reader.commit(a)).tree)
    const [now, then] = [await ws.stateOf(r.head!), await ws.stateOf(a)]
    expect([...now.tableIds]).to.deep.equal([...then.tableIds])
    expect(dumpDatabase(db)).to.deep.equal(dumpA)
    expect(r.changes!.summary.tilesModified).to.equal(4)
    expect((await status(ws)).clean).to.equal(true)
    const again = await revert(ws, {revision: a, mode: 'to'})
    expect(again.outcome).to.equal('nothing-to-revert')
    expect(await ws.repo.refs.headCommit()).to.equal(r.head)
  })

  for (const mode of ['undo', 'to'] as const) {
    it(`${mode === 'to' ? '--to' : 'undo'}: refused over uncommitted changes, changing nothing`, async () => {
      const {dir, db, ws, a, b} = await history()
      setGeneration(db, 3, 3, 3001)
      const before = {files: fileState(dir), db: dumpDatabase(db)}
      await expectCode(revert(ws, {revision: mode === 'to' ? a : b, mode}), 'DIRTY')
      await expectCode(revert(ws, {revision: mode === 'to' ? a : b, mode, dryRun: true}), 'DIRTY')
      expect(fileState(dir)).to.deep.equal(before.files)
      expect(dumpDatabase(db)).to.deep.equal(before.db)
      const r = cli(dir, ['revert', mode === 'to' ? a : b, ...(mode === 'to' ? ['--to'] : [])])
      expect(r.code).to.equal(1)
      expect(r.stderr).to.match(/^tilesync: the database has uncommitted changes \(commit them first/)
      expect(fileState(dir)).to.deep.equal(before.files)
    })
  }

  it('--dry-run lists the tiles (and conflicts) and writes nothing: database, store, refs, state', async () => {
    const {dir, db, ws, a, b} = await history()
    const before = fileState(dir)
    const dry = await revert(ws, {revision: b, dryRun: true})
    expect(dry.outcome).to.equal('dry-run')
    expect(dry.changes!.tiles.map((t) => [t.x, t.y])).to.deep.equal([[0, 0], [1, 1], [2, 2]])
    const dryTo = await revert(ws, {revision: a, mode: 'to', dryRun: true})
    expect(dryTo.changes!.tiles.map((t) => [t.x, t.y])).to.deep.equal([[0, 0], [-2, 1], [1, 1], [2, 2]])
    const out = cli(dir, ['revert', b, '--dry-run'])
    expect(out.code, out.stderr).to.equal(0)
    expect(out.stdout).to.include('would change 3 tile(s); nothing was changed')
    expect(out.stdout).to.include('M tile 2,2  columns: notes')
    expect(fileState(dir), 'nothing written').to.deep.equal(before)

    // The real run changes exactly the tiles the dry run listed.
    const real = await revert(ws, {revision: b})
    expect(real.changes!.tiles.map((t) => [t.x, t.y])).to.deep.equal([[0, 0], [1, 1], [2, 2]])

    // A dry run of a conflicting revert (re-applying B over a newer 0,0) reports the conflict
    // and records no revert in progress.
    setGeneration(db, 0, 0, 4001)
    await commit(ws, {message: 'E: 0,0 again', author})
    const beforeConflict = fileState(dir)
    const dc = await revert(ws, {revision: 'HEAD~1', dryRun: true})
    expect(dc.conflicts.map((c) => [c.x, c.y, c.columns])).to.deep.equal([[0, 0, ['generation']]])
    expect(dc.changes!.tiles.map((t) => [t.x, t.y])).to.deep.equal([[1, 1], [2, 2]])
    expect(fileState(dir)).to.deep.equal(beforeConflict)
    expect(fs.existsSync(ws.repo.layout.mergeState)).to.equal(false)
  })
})
