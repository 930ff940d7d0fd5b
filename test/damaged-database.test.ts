import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {checkoutInto} from '../src/ops/checkout.js'
import {commit} from '../src/ops/commit.js'
import {fsckLocal} from '../src/ops/fsck.js'
import {status} from '../src/ops/status.js'
import {Workspace} from '../src/workspace/workspace.js'
import {cli} from './support/cli.js'
import {author, exactDump, projectWith, query, run} from './support/shapes.js'

const SQL = `CREATE TABLE tiles (x INTEGER NOT NULL, y INTEGER NOT NULL, img BLOB, note TEXT, PRIMARY KEY (x, y));
  CREATE INDEX tiles_note ON tiles (note);
  WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 199)
  INSERT INTO tiles SELECT i % 20, i / 20, randomblob(64), 'note ' || i FROM n;`

/** Overwrites one page of the file (the root page of `object`, all but its 8-byte header) with garbage, as a bad disk would. */
function scribble(db: string, object: string): void {
  const [{rootpage, pageSize}] = query<{rootpage: number; pageSize: number}>(db, `SELECT rootpage, (SELECT page_size FROM pragma_page_size) AS pageSize FROM sqlite_master WHERE name = ?`, object)
  const fd = fs.openSync(db, 'r+')
  try {
    fs.writeSync(fd, Buffer.alloc(pageSize - 8, 0xa5), 0, pageSize - 8, (rootpage - 1) * pageSize + 8)
  } finally {
    fs.closeSync(fd)
  }
}

/** Runs the CLI as an unprivileged user when tests run as root (root ignores file permissions). */
/**
 * Directories above the checkout that another user cannot pass through (a clone in a
 * `mktemp -d` directory is 0700): given o+x while `run` runs, so the other user can start the
 * program, then put back as they were.
 */
function traversableByOthers<T>(run: () => T): T {
  const changed: Array<[string, number]> = []
  for (let d = path.resolve('.'); ; d = path.dirname(d)) {
    const mode = fs.statSync(d).mode & 0o7777
    if (!(mode & 0o001)) {
      fs.chmodSync(d, mode | 0o001)
      changed.push([d, mode])
    }
    if (path.dirname(d) === d) break
  }
  try {
    return run()
  } finally {
    for (const [d, mode] of changed) fs.chmodSync(d, mode)
  }
}

function cliAsUser(dir: string, args: string[]): {code: number; stdout: string; stderr: string} {
  if (process.getuid?.() !== 0) return cli(dir, args)
  return traversableByOthers(() => runAsNobody(dir, args))
}

function runAsNobody(dir: string, args: string[]): {code: number; stdout: string; stderr: string} {
  try {
    const stdout = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, path.resolve('bin', 'run.js'), ...args], {
      cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, TILESYNC_AUTHOR_NAME: 'u', TILESYNC_AUTHOR_EMAIL: 'u@x', HOME: dir},
    })
    return {code: 0, stdout, stderr: ''}
  } catch (error) {
    const e = error as {status: number; stdout: string; stderr: string}
    return {code: e.status, stdout: e.stdout, stderr: e.stderr}
  }
}

const oneLine = (stderr: string): void => {
  expect(stderr.trim().split('\n'), stderr).to.have.length(1)
  expect(stderr).to.not.match(/SqliteError|Code:|\n\s+at /)
}

describe('damaged databases and SQLite errors', () => {
  it('a damaged page: status --rescan and fsck say the database is damaged and how to restore it; checkout --into writes a sound copy', async () => {
    const {dir, db, ws} = await projectWith(SQL, {table: 'tiles'})
    await commit(ws, {message: 'one', author})
    const committed = exactDump(db)
    scribble(db, 'tiles_note')
    expect(query<{r: string}>(db, `PRAGMA integrity_check`).map((r) => Object.values(r)[0])).to.not.deep.equal(['ok'])
    let error: {code?: string; message?: string; hint?: string} = {}
    await status(ws, {rescan: true}).catch((e: typeof error) => {
      error = e
    })
    expect(error.code).to.equal('DB_CORRUPT')
    expect(error.message).to.contain(db)
    expect(error.hint).to.contain('tilesync checkout HEAD --into')
    const f = await fsckLocal(ws)
    expect(f.ok).to.equal(false)
    expect(f.problems.map((p) => p.kind)).to.deep.equal(['database'])
    expect(f.problems[0].message).to.match(/is damaged \(PRAGMA integrity_check: .*checkout HEAD --into/)
    const r = cli(dir, ['fsck'])
    expect(r.code).to.equal(1)
    expect(r.stdout).to.contain('problem: the database')

    const restored = path.join(dir, 'restored.db')
    const into = await checkoutInto(ws, 'HEAD', restored)
    expect(into.rows).to.equal(200)
    expect(query(restored, `PRAGMA integrity_check`)).to.deep.equal([{integrity_check: 'ok'}])
    expect(exactDump(restored)).to.deep.equal(committed)
    // Put in place, it is the repository's database again, tracked and clean.
    fs.renameSync(restored, db)
    const s = await status(await Workspace.open(dir))
    expect(s.clean).to.equal(true)
    expect(s.scan.incremental).to.equal(true)
    expect((await fsckLocal(ws)).ok).to.equal(true)
    expect(cli(dir, ['checkout', 'HEAD', '--into', 'data.db']).stderr).to.match(/^tilesync: .*already exists/)
  })

  it('a damaged table page: commit fails with DB_CORRUPT and the restore hint, not "checkout --force"', async () => {
    const {dir, db, ws} = await projectWith(SQL, {table: 'tiles'})
    await commit(ws, {message: 'one', author})
    run(db, `UPDATE tiles SET note = 'changed' WHERE x = 1 AND y = 1`)
    scribble(db, 'tiles')
    const r = cli(dir, ['commit', '-m', 'two'])
    expect(r.code).to.equal(1)
    oneLine(r.stderr)
    expect(r.stderr).to.match(/^tilesync: the database .*data\.db is damaged .*checkout HEAD --into restored\.db/)
    expect(r.stderr).to.not.contain('--force')
  })

  it('a read-only database, or one in a directory the user cannot write: one line naming the file, nothing changed', async () => {
    const {dir, db, ws} = await projectWith(SQL, {table: 'tiles'})
    await commit(ws, {message: 'one', author})
    run(db, `UPDATE tiles SET note = 'x' WHERE x = 0 AND y = 0`)
    const before = fs.readFileSync(db)
    // .tilesync stays writable (its lock and objects); the database is not.
    for (const d of [path.dirname(dir), dir]) fs.chmodSync(d, 0o755)
    execFileSync('chmod', ['-R', 'a+rwX', path.join(dir, '.tilesync')])
    fs.chmodSync(db, 0o444)
    const ro = cliAsUser(dir, ['checkout', 'HEAD', '--force'])
    expect(ro.code).to.equal(1)
    oneLine(ro.stderr)
    expect(ro.stderr).to.match(/^tilesync: cannot write the database .*data\.db: the file is read-only for this user .*nothing was changed/)
    fs.chmodSync(db, 0o666)
    const rd = cliAsUser(dir, ['checkout', 'HEAD', '--force'])
    expect(rd.code).to.equal(1)
    oneLine(rd.stderr)
    expect(rd.stderr).to.match(/^tilesync: cannot write the database .*data\.db: the directory .* is not writable/)
    expect(fs.readFileSync(db).equals(before)).to.equal(true)
  })

  it('a constraint the restored rows break, and a full-text table SQLite cannot write: one line, nothing changed', async () => {
    const {dir, db, ws} = await projectWith(`CREATE TABLE tiles (x INTEGER NOT NULL, y INTEGER NOT NULL, img BLOB, name TEXT UNIQUE, PRIMARY KEY (x, y));
      INSERT INTO tiles VALUES (0, 0, x'01', 'harbour'), (3, 3, x'02', 'hill');`, {table: 'tiles'})
    await commit(ws, {message: 'one', author})
    // The name moved to another tile: restoring tile 0,0 alone would give two tiles one name.
    run(db, `DELETE FROM tiles WHERE x = 0; UPDATE tiles SET name = 'harbour' WHERE x = 3;`)
    await commit(ws, {message: 'two', author})
    const before = exactDump(db)
    const r = cli(dir, ['checkout', 'HEAD~1', '--tile', '0,0'])
    expect(r.code).to.equal(1)
    oneLine(r.stderr)
    expect(r.stderr).to.match(/^tilesync: SQLite refused a write to .*data\.db: UNIQUE constraint failed: tiles\.name .*nothing was changed/)
    expect(exactDump(db)).to.deep.equal(before)

    // A full-text table with a tokenizer only its application registers (made here by editing
    // the schema with the sqlite3 shell; the application writes its rows with the real one).
    const tokenizer = (file: string, from: string, to: string): void => {
      execFileSync('sqlite3', [file, `PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = replace(sql, '${from}', '${to}') WHERE name = 'docs';`])
    }
    const fts = await projectWith(`CREATE TABLE tiles (x INTEGER NOT NULL, y INTEGER NOT NULL, img BLOB, PRIMARY KEY (x, y));
      CREATE VIRTUAL TABLE docs USING fts5(t, tokenize = 'porter'); INSERT INTO docs VALUES ('first');`, {table: 'tiles'})
    tokenizer(fts.db, 'porter', 'their_tokenizer')
    await commit(fts.ws, {message: 'one', author})
    tokenizer(fts.db, 'their_tokenizer', 'porter')
    run(fts.db, `INSERT INTO docs VALUES ('second')`)
    tokenizer(fts.db, 'porter', 'their_tokenizer')
    await commit(fts.ws, {message: 'two', author})
    const f = cli(fts.dir, ['checkout', 'HEAD~1'])
    expect(f.code).to.equal(1)
    oneLine(f.stderr)
    expect(f.stderr).to.match(/^tilesync: SQLite failed on .*data\.db: .*tokenizer.*full-text/)
  })
})
