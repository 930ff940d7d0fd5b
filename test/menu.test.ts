import {expect} from 'chai'
import {execFileSync} from 'node:child_process'

import {BIN, cli} from './support/cli.js'
import {setGeneration} from './support/edit.js'
import {dumpDatabase, makeProject} from './support/fixtures.js'

/**
 * The menu through a real pseudo-terminal: tmux runs `tilesync` with no arguments, keys are
 * typed with send-keys and the screen is read with capture-pane. A private tmux server
 * (-L) started from this process carries its environment to the command.
 */
class Terminal {
  private readonly socket = `tilesync-menu-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

  constructor(cwd: string, command: string) {
    this.tmux('new-session', '-d', '-s', 'menu', '-x', '110', '-y', '45', '-c', cwd, command)
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], {
      encoding: 'utf8',
      env: {...process.env, TILESYNC_AUTHOR_NAME: 'Menu Test', TILESYNC_AUTHOR_EMAIL: 'menu@example.com', TERM: 'xterm-256color'},
    })
  }

  keys(...keys: string[]): void {
    this.tmux('send-keys', '-t', 'menu', ...keys)
  }

  type(text: string): void {
    this.tmux('send-keys', '-t', 'menu', '-l', text)
  }

  /** Everything shown so far, scrollback included, wrapped lines joined. */
  screen(): string {
    return this.tmux('capture-pane', '-p', '-J', '-S', '-2000', '-t', 'menu')
  }

  /** Waits until the screen shows `pattern` (`count` times), or fails with what it shows. */
  async waitFor(pattern: RegExp, count = 1, timeoutMs = 20_000): Promise<string> {
    const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : pattern.flags + 'g')
    const end = Date.now() + timeoutMs
    for (;;) {
      const text = this.screen()
      if ((text.match(global)?.length ?? 0) >= count) return text
      if (Date.now() > end) throw new Error(`timed out waiting for ${pattern} (x${count}); the screen shows:\n${text}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  close(): void {
    try {
      this.tmux('kill-server')
    } catch {
      // already gone
    }
  }
}

describe('tilesync with no arguments', function () {
  this.timeout(120_000)

  it('on a terminal opens the menu: status, log, commit and checkout run and show their results; quit exits 0', async () => {
    const {dir, db} = makeProject()
    expect(cli(dir, ['init']).code).to.equal(0)
    expect(cli(dir, ['commit', '-m', 'first snapshot']).code).to.equal(0)
    const first = dumpDatabase(db)
    const term = new Terminal(dir, `${process.execPath} ${BIN}; echo "MENU-EXITED $?"; sleep 600`)
    try {
      await term.waitFor(/What do you want to do\?/)
      expect(term.screen()).to.match(/❯ status\n +commit\n +log\n +diff\n +checkout\n +push\n +pull\n +serve/)

      // status (the first choice)
      term.keys('Enter')
      await term.waitFor(/Nothing to commit: the database matches HEAD\./)

      // The pipeline writes a tile; status shows it.
      setGeneration(db, 0, 0, 4321)
      await term.waitFor(/What do you want to do\?/, 2)
      term.keys('Enter')
      await term.waitFor(/M tile 0,0 +generation: /)

      // commit: asks for a message
      await term.waitFor(/What do you want to do\?/, 3)
      term.keys('Down', 'Enter')
      await term.waitFor(/Commit message:/)
      term.type('from the menu')
      term.keys('Enter')
      await term.waitFor(/\[main [0-9a-f]{10}\] from the menu/)

      // log: the two commits, newest first
      await term.waitFor(/What do you want to do\?/, 4)
      term.keys('Down', 'Down', 'Enter')
      const shown = await term.waitFor(/ {4}first snapshot/)
      expect(shown.indexOf('    from the menu')).to.be.greaterThan(-1).and.lessThan(shown.lastIndexOf('    first snapshot'))

      // checkout: shows the dry run first, then checks out after "Yes"
      await term.waitFor(/What do you want to do\?/, 5)
      term.keys('Down', 'Down', 'Down', 'Down', 'Enter')
      await term.waitFor(/Revision to check out/)
      term.type('HEAD~1')
      term.keys('Enter')
      await term.waitFor(/Would check out HEAD~1 \([0-9a-f]{10}\), HEAD detached: 1 rows written, 0 deleted, 1 tile\(s\) changed; nothing was changed\./)
      await term.waitFor(/Check out HEAD~1\?/)
      term.keys('Up', 'Enter')
      await term.waitFor(/HEAD is now detached at HEAD~1/)
      expect(dumpDatabase(db)).to.deep.equal(first)

      // quit (Up from the first choice wraps to the last)
      await term.waitFor(/What do you want to do\?/, 6)
      term.keys('Up', 'Enter')
      await term.waitFor(/MENU-EXITED 0/)
    } finally {
      term.close()
    }
  })

  it('without a terminal prints help and exits 0; --version stays the fast path', () => {
    const {dir} = makeProject()
    const r = cli(dir, [])
    expect(r.code).to.equal(0)
    expect(r.stdout).to.contain('USAGE')
    expect(r.stdout).to.match(/COMMANDS\n/)
    expect(r.stdout).to.match(/^ +status +/m)
    expect(r.stdout).to.match(/^ +release +/m)
    const v = cli(dir, ['--version'])
    expect(v.stdout).to.match(/^tilesync\/\d+\.\d+\.\d+ /)
  })
})
