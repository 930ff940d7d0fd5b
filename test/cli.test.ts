import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import * as path from 'node:path'

import {makeProject, dumpDatabase, tmpDir, DB_REL} from './support/fixtures.js'
import {setGeneration} from './support/edit.js'
import {BIN, cli, cliJson, REPO_ROOT} from './support/cli.js'

describe('the CLI as a subprocess (README quick start)', function () {
  this.timeout(180_000)

  it('init, commit, status, diff, log, checkout, remote add, push, clone', () => {
    const {dir, db} = makeProject()
    expect(cli(dir, ['init']).code).to.equal(0)
    const first = cliJson<{committed: boolean; id: string}>(dir, ['commit', '-m', 'first snapshot'])
    expect(first.committed).to.equal(true)
    const nothing = cli(dir, ['commit', '-m', 'again'])
    expect(nothing.code).to.equal(0)
    expect(nothing.stdout).to.contain('Nothing to commit')

    setGeneration(db, 0, 0, 4242)
    const st = cli(path.join(dir, 'generations'), ['status'])
    expect(st.code).to.equal(0)
    expect(st.stdout).to.match(/M tile 0,0 +generation: /)
    cli(dir, ['commit', '-m', 'edit 0,0'])

    const d = cliJson<{changes: {tiles: Array<{key: string; layers: Array<{layer: string}>}>}}>(dir, ['diff', 'HEAD~1'])
    expect(d.changes.tiles.map((t) => t.key)).to.deep.equal(['0,0'])
    const log = cliJson<{commits: Array<{message: string; tilesChanged: number}>}>(dir, ['log'])
    expect(log.commits.map((c) => [c.message, c.tilesChanged])).to.deep.equal([['edit 0,0', 1], ['first snapshot', 30]])
    expect(cli(dir, ['log', '--oneline', '-n', '1']).stdout.split('\n').filter(Boolean)).to.have.length(1)

    const latest = dumpDatabase(db)
    expect(cli(dir, ['checkout', 'HEAD~1']).code).to.equal(0)
    expect(cli(dir, ['checkout', 'main']).code).to.equal(0)
    expect(dumpDatabase(db)).to.deep.equal(latest)

    const remote = path.join(tmpDir('cli-remote'), 'tiles')
    expect(cli(dir, ['remote', 'add', 'origin', remote]).code).to.equal(0)
    // A branch the remote does not have yet reads "none", with no brackets inside brackets.
    const wouldPush = cli(dir, ['push', '--dry-run']).stdout
    expect(wouldPush).to.match(/\(none -> [0-9a-f]{10}\)\.$/m)
    expect(wouldPush).to.not.contain('((')
    const pushed = cliJson<{objects: number}>(dir, ['push'])
    expect(pushed.objects).to.be.greaterThan(30)
    const target = path.join(tmpDir('cli-clone'), 'copy')
    expect(cli(dir, ['clone', remote, target]).code).to.equal(0)
    expect(dumpDatabase(path.join(target, DB_REL))).to.deep.equal(latest)
  })

  it('errors are one line on stderr with exit code 1, and JSON under --json', () => {
    const {dir} = makeProject()
    const outside = cli(tmpDir(), ['status'])
    expect(outside.code).to.equal(1)
    expect(outside.stderr.trim().split('\n')).to.have.length(1)
    expect(outside.stderr).to.contain('not a tilesync repository')
    cli(dir, ['init'])
    const bad = cli(dir, ['checkout', 'nope'])
    expect(bad.code).to.equal(1)
    expect(bad.stderr.trim().split('\n')).to.deep.equal(['tilesync: unknown revision "nope" (see `tilesync log`, `tilesync branch` and `tilesync tag` for what exists)'])
    const json = cli(dir, ['checkout', 'nope', '--json'])
    expect(json.code).to.equal(1)
    expect(JSON.parse(json.stdout).error.code).to.equal('UNKNOWN_REVISION')
  })

  it('parse errors are one line with exit code 1, a stable code under --json, and the nearest command or flag', () => {
    const {dir} = makeProject()
    cli(dir, ['init'])
    const oneLine = (args: string[]): string => {
      const r = cli(dir, args)
      expect(r.code, args.join(' ')).to.equal(1)
      expect(r.stdout, args.join(' ')).to.equal('')
      const lines = r.stderr.trim().split('\n')
      expect(lines, args.join(' ')).to.have.length(1)
      return lines[0]
    }
    const codeOf = (args: string[]): string => {
      const r = cli(dir, [...args, '--json'])
      expect(r.code, args.join(' ')).to.equal(1)
      return (JSON.parse(r.stdout) as {error: {code: string}}).error.code
    }
    expect(oneLine(['comit'])).to.equal('tilesync: "comit" is not a tilesync command (did you mean `tilesync commit`? See `tilesync --help`)')
    expect(codeOf(['comit'])).to.equal('UNKNOWN_COMMAND')
    expect(oneLine(['remote', 'ad', 'origin', '/tmp/x'])).to.contain('did you mean `tilesync remote add`?')
    expect(oneLine(['xyzzy'])).to.not.contain('did you mean')
    expect(oneLine(['status', '--recan'])).to.equal('tilesync: unknown flag --recan for `tilesync status` (did you mean --rescan? see `tilesync status --help`)')
    expect(codeOf(['status', '--recan'])).to.equal('UNKNOWN_FLAG')
    expect(oneLine(['commit'])).to.equal('tilesync: `tilesync commit` needs --message (-m) (see `tilesync commit --help`)')
    expect(codeOf(['commit'])).to.equal('MISSING_ARGUMENT')
    expect(oneLine(['diff', 'a', 'b', 'c'])).to.contain('unexpected argument')
    expect(codeOf(['diff', 'a', 'b', 'c'])).to.equal('BAD_ARGUMENT')
  })

  it('every command has --help with examples', () => {
    const help = cli(REPO_ROOT, ['--help']).stdout
    const commands = [...help.matchAll(/^ {2}([a-z]+(?: [a-z]+)?) {2,}/gm)].map((m) => m[1])
    expect(commands).to.include.members(['init', 'status', 'commit', 'log', 'diff', 'checkout', 'push', 'pull', 'clone', 'fetch', 'merge'])
    for (const c of ['init', 'status', 'commit', 'log', 'diff', 'checkout', 'switch', 'branch', 'tag', 'show', 'remote add', 'push', 'fetch', 'pull', 'clone', 'merge', 'reflog']) {
      const r = cli(REPO_ROOT, [...c.split(' '), '--help'])
      expect(r.code, c).to.equal(0)
      expect(r.stdout, c).to.contain('EXAMPLES')
    }
  })

  it('the published package contains the CLI entry point and the built commands', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {cwd: REPO_ROOT, encoding: 'utf8'})
    const files = (JSON.parse(out) as Array<{files: Array<{path: string}>}>)[0].files.map((f) => f.path)
    expect(files).to.include('bin/run.js')
    expect(files).to.include('dist/commands/commit.js')
    expect(files).to.include('dist/src/ops/commit.js')
    expect(files.some((f) => f.startsWith('dist/test/'))).to.equal(false)
  })

  it('shows a progress bar on stderr only when stderr is a terminal', () => {
    const {dir} = makeProject({width: 20, height: 20})
    cli(dir, ['init'])
    const env: NodeJS.ProcessEnv = {...process.env, TILESYNC_NO_PROGRESS: '', TILESYNC_AUTHOR_NAME: 'P', TILESYNC_AUTHOR_EMAIL: 'p@x'}
    delete env.CI
    // `script` gives the command a real pseudo-terminal.
    const tty = execFileSync('script', ['-qec', `${process.execPath} ${BIN} commit -m tty`, '/dev/null'], {cwd: dir, encoding: 'utf8', env})
    expect(tty).to.match(/commit \[[\u2588\u2591 ]*\]/)
    cli(dir, ['checkout', 'HEAD', '--force'])
    const piped = cli(dir, ['commit', '-m', 'piped'], {CI: ''})
    expect(piped.stderr).to.not.contain('[')
  })
})
