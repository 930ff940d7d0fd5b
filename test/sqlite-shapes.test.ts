import {expect} from 'chai'
import * as path from 'node:path'

import {checkout} from '../src/ops/checkout.js'
import {commit} from '../src/ops/commit.js'
import {status} from '../src/ops/status.js'
import {cli} from './support/cli.js'
import {tmpDir} from './support/fixtures.js'
import {author, cloneOf, exactDump, projectWith, query, run} from './support/shapes.js'

async function expectCode(p: Promise<unknown>, code: string, text?: RegExp): Promise<Error> {
  try {
    await p
  } catch (error) {
    expect((error as {code?: string}).code, (error as Error).message).to.equal(code)
    if (text) expect((error as Error).message + ' ' + String((error as {hint?: string}).hint)).to.match(text)
    return error as Error
  }
  expect.fail(`expected ${code}`)
}

const TILES = `CREATE TABLE tiles (x INTEGER NOT NULL, y INTEGER NOT NULL, img BLOB, PRIMARY KEY (x, y));
INSERT INTO tiles VALUES (0, 0, x'01'), (1, 0, x'02');`

describe('SQLite shapes: every row comes back, or tilesync refuses up front', () => {
  it('keeps user tables whose names only look like tilesync\'s own (LIKE \'_tilesync%\' matched them)', async () => {
    const {db, ws} = await projectWith(`${TILES}
      CREATE TABLE Xtilesync_backup (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO Xtilesync_backup VALUES (1, 'keep me');
      CREATE TABLE atilesync_log (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO atilesync_log VALUES (1, 'and me');
      CREATE TABLE _TileSyncNotes (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO _TileSyncNotes VALUES (1, 'me too');
      CREATE TABLE _tilesync_extra (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO _tilesync_extra VALUES (1, 'mine');
      CREATE TRIGGER _tilesync_tiles_note AFTER INSERT ON tiles BEGIN INSERT INTO atilesync_log (v) VALUES ('insert'); END;`, {table: 'tiles'})
    const before = exactDump(db)
    await commit(ws, {message: 'one', author})
    expect(exactDump(db)).to.deep.equal(before)
    const names = (await ws.stateOf(await ws.repo.refs.headCommit())).snapshot.tables.map((t) => t.name)
    expect(names).to.include.members(['Xtilesync_backup', 'atilesync_log', '_TileSyncNotes', '_tilesync_extra', 'tiles'])
    run(db, `UPDATE Xtilesync_backup SET v = 'changed'`)
    expect((await status(ws)).changes.tables.map((t) => t.table)).to.deep.equal(['Xtilesync_backup'])
    await commit(ws, {message: 'two', author})
    await checkout(ws, {revision: 'HEAD~1'})
    expect(exactDump(db)).to.deep.equal(before)
    expect(exactDump((await cloneOf(ws)).db)).to.deep.equal(before)
    // A table of the user's with exactly the reserved name is refused, not skipped.
    await expectCode(projectWith(`${TILES} CREATE TABLE _tilesync_state (id INTEGER PRIMARY KEY, note TEXT);`, {table: 'tiles'}), 'UNSUPPORTED_SHAPE', /reserved for tilesync/)
  })

  describe('foreign keys', () => {
    const FK = `${TILES}
      CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
      CREATE TABLE child (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES parent(id) ON DELETE CASCADE, v TEXT);
      CREATE TABLE kid (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES parent(id) ON DELETE SET NULL ON UPDATE CASCADE);
      INSERT INTO parent VALUES (1, 'one'), (2, 'two');
      INSERT INTO child VALUES (10, 1, 'a'), (11, 2, 'b'), (12, 2, 'c');
      INSERT INTO kid VALUES (20, 2), (21, 1);`

    it('checkout deletes a parent row without cascading into the child rows the target keeps', async () => {
      const {db, ws} = await projectWith(FK, {table: 'tiles'})
      await commit(ws, {message: 'with parent 2', author})
      // The user's own tools (foreign keys off, as SQLite defaults) leave the children in place.
      run(db, `DELETE FROM parent WHERE id = 2`)
      const withoutParent = exactDump(db)
      await commit(ws, {message: 'parent 2 gone', author})
      await checkout(ws, {revision: 'HEAD~1'})
      const r = await checkout(ws, {revision: 'main'})
      expect(r.rowsDeleted).to.equal(1)
      expect(exactDump(db)).to.deep.equal(withoutParent)
      expect((await status(ws, {rescan: true})).clean).to.equal(true)
    })

    it('checking out a parent table from before an ALTER TABLE (dropped and created again) keeps its children', async () => {
      const {db, ws} = await projectWith(FK, {table: 'tiles'})
      await commit(ws, {message: 'before', author})
      const before = exactDump(db)
      run(db, `ALTER TABLE parent ADD COLUMN note TEXT; UPDATE parent SET note = 'n';`)
      const after = exactDump(db)
      await commit(ws, {message: 'migrated parent', author})
      await checkout(ws, {revision: 'HEAD~1'})
      expect(exactDump(db)).to.deep.equal(before)
      await checkout(ws, {revision: 'main'})
      expect(exactDump(db)).to.deep.equal(after)
    })

    it('a clone builds a child table that sorts before its parent (rows are written with foreign keys off)', async () => {
      const {db, ws} = await projectWith(`${TILES}
        CREATE TABLE z_parent (id INTEGER PRIMARY KEY);
        CREATE TABLE a_child (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL REFERENCES z_parent(id));
        INSERT INTO z_parent VALUES (1), (2); INSERT INTO a_child VALUES (1, 2), (2, 1);`, {table: 'tiles'})
      await commit(ws, {message: 'one', author})
      expect(exactDump((await cloneOf(ws)).db)).to.deep.equal(exactDump(db))
    })
  })

  describe('keys compared as the values they are', () => {
    it('refuses NULL in a primary key column at init, and at commit when one appears later', async () => {
      await expectCode(projectWith(`${TILES} CREATE TABLE notes (k TEXT PRIMARY KEY, v TEXT); INSERT INTO notes VALUES (NULL, 'a'), (NULL, 'b'), ('x', 'c');`, {table: 'tiles'}),
        'UNSUPPORTED_VALUE', /notes.*NULL/)
      const {db, ws} = await projectWith(`${TILES} CREATE TABLE notes (k TEXT PRIMARY KEY, v TEXT); INSERT INTO notes VALUES ('x', 'c');`, {table: 'tiles'})
      await commit(ws, {message: 'one', author})
      run(db, `INSERT INTO notes VALUES (NULL, 'a'), (NULL, 'b')`)
      await expectCode(commit(ws, {message: 'two', author}), 'UNSUPPORTED_VALUE', /notes.*NULL/)
      expect((await ws.reader.commit((await ws.repo.refs.headCommit())!)).message).to.equal('one')
    })

    it('refuses a --key that is not unique (MBTiles without zoom_level) instead of keeping 2 rows of 5', async () => {
      const MB = `CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
        INSERT INTO tiles VALUES (0, 0, 0, x'00'), (1, 0, 0, x'01'), (1, 1, 0, x'02'), (2, 0, 0, x'03'), (2, 1, 0, x'04');`
      await expectCode(projectWith(MB, {table: 'tiles', key: ['tile_column', 'tile_row']}), 'UNSUPPORTED_VALUE', /not unique: 5 rows share 2 keys.*zoom_level/)
      const {db, ws} = await projectWith(MB, {table: 'tiles', key: ['zoom_level', 'tile_column', 'tile_row']})
      await commit(ws, {message: 'one', author})
      // With --key, rows are identified by those columns; the hidden rowid of a table without a primary key is not kept.
      expect(exactDump((await cloneOf(ws)).db, {noRowid: ['tiles']})).to.deep.equal(exactDump(db, {noRowid: ['tiles']}))
      // A duplicate that appears later is refused by the commit (the key is not the primary key, so every row is read).
      run(db, `INSERT INTO tiles VALUES (2, 1, 0, x'05')`)
      await expectCode(commit(ws, {message: 'two', author}), 'UNSUPPORTED_VALUE', /more than one row with the key/)
    })

    it('refuses TEXT that is not valid UTF-8 (three keys would become one U+FFFD row), in keys and in other cells', async () => {
      await expectCode(projectWith(`${TILES} CREATE TABLE k (name TEXT PRIMARY KEY, v INTEGER);
        INSERT INTO k VALUES (CAST(x'ff' AS TEXT), 1), (CAST(x'fe' AS TEXT), 2), (CAST(x'c3' AS TEXT), 3);`, {table: 'tiles'}).then(({ws}) => commit(ws, {message: 'one', author})),
      'UNSUPPORTED_VALUE', /not valid UTF-8/)
      const {db, ws} = await projectWith(`${TILES} CREATE TABLE k (name TEXT PRIMARY KEY, v TEXT); INSERT INTO k VALUES ('a', 'ok \uFFFD'), ('b', '� fine');`, {table: 'tiles'})
      await commit(ws, {message: 'valid U+FFFD is kept', author})
      expect(exactDump((await cloneOf(ws)).db)).to.deep.equal(exactDump(db))
      run(db, `UPDATE k SET v = CAST(x'41ff42' AS TEXT) WHERE name = 'a'`)
      await expectCode(commit(ws, {message: 'two', author}), 'UNSUPPORTED_VALUE', /"k" column "v" holds TEXT that is not valid UTF-8/)
    })

    for (const [collation, from, to] of [['NOCASE', 'alpha', 'ALPHA'], ['RTRIM', 'alpha', 'alpha  ']]) {
      it(`a COLLATE ${collation} key changed only in ${collation === 'NOCASE' ? 'case' : 'trailing spaces'}: no phantom row, checkout and clone exact`, async () => {
        const {db, ws} = await projectWith(`${TILES} CREATE TABLE names (name TEXT PRIMARY KEY COLLATE ${collation}, v INTEGER);
          INSERT INTO names VALUES ('${from}', 1), ('beta', 2);`, {table: 'tiles'})
        await commit(ws, {message: 'one', author})
        const before = exactDump(db)
        run(db, `UPDATE names SET name = '${to}', v = 3 WHERE name = '${from}'`)
        const after = exactDump(db)
        const s = await status(ws)
        expect(s.scan.incremental).to.equal(true)
        expect(s.changes.tables.map((t) => [t.table, t.added, t.modified, t.deleted])).to.deep.equal([['names', 1, 0, 1]])
        await commit(ws, {message: 'two', author})
        const head = await ws.stateOf(await ws.repo.refs.headCommit())
        expect(head.tables.get('names')!.rowCount).to.equal(2)
        expect(exactDump((await cloneOf(ws)).db)).to.deep.equal(after)
        await checkout(ws, {revision: 'HEAD~1'})
        expect(exactDump(db)).to.deep.equal(before)
        await checkout(ws, {revision: 'main'})
        expect(exactDump(db)).to.deep.equal(after)
      })
    }

    it('keys that only look alike stay apart: the INTEGER 1 and the REAL 1.0 of an untyped key, a separator inside composite TEXT keys', async () => {
      const {db, ws} = await projectWith(`${TILES} CREATE TABLE u (k PRIMARY KEY, v TEXT); INSERT INTO u VALUES (1, 'int'), (2.5, 'real');
        CREATE TABLE c (a TEXT, b TEXT, v INTEGER, PRIMARY KEY (a, b)); INSERT INTO c VALUES ('a' || char(31) || 'tb', 'x', 1), ('a', 'b' || char(31) || 'tx', 2);`, {table: 'tiles'})
      await commit(ws, {message: 'one', author})
      const before = exactDump(db)
      expect((await ws.stateOf(await ws.repo.refs.headCommit())).tables.get('c')!.rowCount).to.equal(2)
      run(db, `UPDATE u SET k = 1.0 WHERE k = 1`)
      const after = exactDump(db)
      await commit(ws, {message: 'two', author})
      expect(exactDump((await cloneOf(ws)).db)).to.deep.equal(after)
      await checkout(ws, {revision: 'HEAD~1'})
      expect(exactDump(db)).to.deep.equal(before)
    })
  })

  describe('checkout writes in an order every constraint accepts', () => {
    for (const clause of ['', ' ON CONFLICT REPLACE']) {
      it(`two tiles that swapped places under UNIQUE(row, col)${clause} are checked out back`, async () => {
        const {db, ws} = await projectWith(`CREATE TABLE tiles (id INTEGER PRIMARY KEY, row INTEGER, col INTEGER, img BLOB, UNIQUE (row, col)${clause});
          INSERT INTO tiles VALUES (1, 0, 0, x'01'), (2, 0, 1, x'02'), (3, 5, 5, x'03');`, {table: 'tiles', xy: ['col', 'row']})
        await commit(ws, {message: 'one', author})
        const before = exactDump(db)
        run(db, `UPDATE tiles SET col = -1 WHERE id = 1; UPDATE tiles SET col = 0 WHERE id = 2; UPDATE tiles SET col = 1 WHERE id = 1;`)
        const after = exactDump(db)
        await commit(ws, {message: 'swapped', author})
        await checkout(ws, {revision: 'HEAD~1'})
        expect(exactDump(db)).to.deep.equal(before)
        await checkout(ws, {revision: 'main'})
        expect(exactDump(db)).to.deep.equal(after)
      })
    }
  })

  it('keeps PRAGMA user_version and application_id, AUTOINCREMENT counters and -0.0, through checkout and clone', async () => {
    const {db, ws} = await projectWith(`${TILES}
      PRAGMA user_version = 7; PRAGMA application_id = 1297105496;
      CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, v ANY_TYPE, z);
      INSERT INTO items (v, z) VALUES ('a', -0.0), ('b', 0.0), ('c', 1), ('d', 2), ('e', 3);
      DELETE FROM items WHERE id >= 4;
      CREATE TABLE strict_t (id INTEGER PRIMARY KEY, a ANY, b TEXT) STRICT; INSERT INTO strict_t VALUES (1, -0.0, 'x'), (2, x'00', NULL), (3, 1.5, '');`, {table: 'tiles'})
    await commit(ws, {message: 'one', author})
    const before = exactDump(db)
    expect(before.__header).to.deep.equal([7, 1297105496])
    expect(before.__sequence).to.deep.equal([['items', 5]])
    expect(before.items).to.include('i:1 | t:61 | r:-0')
    const clone1 = await cloneOf(ws)
    expect(exactDump(clone1.db)).to.deep.equal(before)
    // A clone hands out the next id after the counter, not after the highest row.
    run(clone1.db, `INSERT INTO items (v) VALUES ('f')`)
    expect(query<{id: number}>(clone1.db, `SELECT max(id) AS id FROM items`)[0].id).to.equal(6)

    run(db, `PRAGMA user_version = 8; INSERT INTO items (v) VALUES ('g'); DELETE FROM items WHERE v = 'g';`)
    const s = await status(ws)
    expect(s.clean).to.equal(false)
    expect(s.changes.headerChanges).to.deep.equal(['user_version 7 -> 8', 'AUTOINCREMENT counter of items 5 -> 6'])
    const after = exactDump(db)
    await commit(ws, {message: 'two', author})
    await checkout(ws, {revision: 'HEAD~1'})
    expect(exactDump(db)).to.deep.equal(before)
    await checkout(ws, {revision: 'main'})
    expect(exactDump(db)).to.deep.equal(after)
  })

  describe('full-text and R*Tree tables', () => {
    const VT = `${TILES}
      CREATE VIRTUAL TABLE docs USING fts5(title, body);
      INSERT INTO docs (rowid, title, body) VALUES (5, 'harbour tiles', 'water edge'), (7, 'old town', 'roofs');
      CREATE VIRTUAL TABLE f4 USING fts4(a);
      INSERT INTO f4 (docid, a) VALUES (3, 'forest');
      CREATE VIRTUAL TABLE rt USING rtree(id, minx, maxx, miny, maxy, +label);
      INSERT INTO rt VALUES (1, 0.5, 1.5, 2.0, 3.0, 'a'), (2, -1, 1, -1, 1, 'b');
      CREATE TABLE src (id INTEGER PRIMARY KEY, t TEXT);
      CREATE VIRTUAL TABLE ext USING fts5(t, content='src', content_rowid='id');
      CREATE TRIGGER src_ai AFTER INSERT ON src BEGIN INSERT INTO ext (rowid, t) VALUES (new.id, new.t); END;
      CREATE TRIGGER src_ad AFTER DELETE ON src BEGIN INSERT INTO ext (ext, rowid, t) VALUES ('delete', old.id, old.t); END;
      INSERT INTO src VALUES (1, 'bridge'), (2, 'tower');
      CREATE VIRTUAL TABLE cl USING fts5(t, content='');
      INSERT INTO cl (rowid, t) VALUES (1, 'gone after a clone');`
    const search = (db: string): unknown => [
      query(db, `SELECT rowid FROM docs WHERE docs MATCH 'water'`), query(db, `SELECT docid FROM f4 WHERE f4 MATCH 'forest'`),
      query(db, `SELECT id FROM rt WHERE minx <= 0 AND maxx >= 0`), query(db, `SELECT rowid FROM ext WHERE ext MATCH 'tower OR castle'`),
    ]

    it('versions their rows, rebuilds their indexes on checkout and clone, and says what it leaves out', async () => {
      const {db, ws} = await projectWith(VT, {table: 'tiles'})
      const before = exactDump(db)
      const one = await commit(ws, {message: 'one', author})
      expect(one.committed).to.equal(true)
      const report = (await status(ws)).report
      expect(report.versioned.map((v) => v.name)).to.include.members(['docs', 'f4', 'rt', 'src', 'tiles'])
      expect(report.versioned.find((v) => v.name === 'docs')!.how).to.match(/fts5 table.*read in full.*no triggers on virtual tables/)
      const left = new Map(report.leftOut.flatMap((l) => l.name.split(', ').map((n) => [n, l.why])))
      expect(left.get('docs_data')).to.match(/index data of virtual table docs/)
      expect(report.leftOut.find((l) => l.name.includes('docs_data'))!.name).to.equal('docs_config, docs_content, docs_data, docs_docsize, docs_idx')
      expect(left.get('ext')).to.match(/fts5 index over table src: rebuilt/)
      expect(left.get('cl')).to.match(/contentless fts5 index: its rows cannot be read back/)
      run(db, `INSERT INTO docs (rowid, title, body) VALUES (9, 'new pier', 'water'); DELETE FROM docs WHERE rowid = 7; UPDATE rt SET maxx = 9 WHERE id = 1;
        INSERT INTO src VALUES (3, 'castle'); DELETE FROM src WHERE id = 1; INSERT INTO f4 (docid, a) VALUES (4, 'forest path');`)
      const after = exactDump(db)
      const afterSearch = search(db)
      const s = await status(ws)
      expect(s.changes.tables.map((t) => [t.table, t.added, t.modified, t.deleted])).to.deep.equal([['docs', 1, 0, 1], ['f4', 1, 0, 0], ['rt', 0, 1, 0], ['src', 1, 0, 1]])
      await commit(ws, {message: 'two', author})
      await checkout(ws, {revision: 'HEAD~1'})
      expect(exactDump(db)).to.deep.equal(before)
      expect(search(db)).to.deep.equal([[{rowid: 5}], [{docid: 3}], [{id: 2}], [{rowid: 2}]])
      expect(query(db, `SELECT * FROM ext WHERE ext MATCH 'bridge'`)).to.deep.equal([{t: 'bridge'}])
      await checkout(ws, {revision: 'main'})
      expect(exactDump(db)).to.deep.equal(after)
      expect(search(db)).to.deep.equal(afterSearch)
      const c = await cloneOf(ws)
      expect(exactDump(c.db)).to.deep.equal(after)
      expect(search(c.db)).to.deep.equal(afterSearch)
      expect(query(c.db, `SELECT count(*) AS n FROM cl WHERE cl MATCH 'clone'`)).to.deep.equal([{n: 0}])
      expect((await status(c.ws, {rescan: true})).clean).to.equal(true)
    })

    it('refuses a virtual table of a module it cannot read back', async () => {
      await expectCode(projectWith(`${TILES} CREATE VIRTUAL TABLE g USING geopoly(a);`, {table: 'tiles'}), 'UNSUPPORTED_SHAPE', /virtual table of module geopoly/)
    })
  })

  it('init and status say what is versioned, how changes are found, and what is left out and why', async () => {
    const dir = tmpDir('shape-cli')
    run(path.join(dir, 'data.db'), `${TILES} CREATE TABLE log (msg TEXT); CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
      CREATE VIRTUAL TABLE docs USING fts5(t); CREATE TABLE src (id INTEGER PRIMARY KEY, t TEXT); CREATE VIRTUAL TABLE ext USING fts5(t, content='src');`)
    const init = cli(dir, ['init', '--db', 'data.db', '--table', 'tiles'])
    expect(init.code, init.stderr).to.equal(0)
    expect(init.stdout).to.contain('  versioned:\n')
    expect(init.stdout).to.match(/ {4}tiles: tile table, change-tracked\n/)
    expect(init.stdout).to.match(/ {4}log: read in full at each status and commit, rows keyed by rowid: it has no primary key/)
    expect(init.stdout).to.match(/ {4}docs: fts5 table, its index rebuilt by SQLite from the rows; read in full/)
    expect(init.stdout).to.match(/ {2}left out:\n {4}docs_config, docs_content, docs_data, docs_docsize, docs_idx: index data of virtual table docs/)
    expect(init.stdout).to.match(/ {4}ext: fts5 index over table src: rebuilt from it after a checkout or clone/)
    expect(init.stdout).to.contain('AUTOINCREMENT counters')
    const st = cli(dir, ['status'])
    expect(st.stdout).to.contain('left out:')
    expect(st.stdout).to.not.contain('versioned:')
    expect(cli(dir, ['status', '--verbose']).stdout).to.contain('versioned:')
    const json = JSON.parse(cli(dir, ['status', '--json']).stdout) as {report: {versioned: Array<{name: string}>}}
    expect(json.report.versioned.map((v) => v.name)).to.deep.equal(['docs', 'jobs', 'log', 'src', 'tiles'])
  })
})
