import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import input from '@inquirer/input'
import select from '@inquirer/select'

import {Repository} from '../repo/repository.js'

/**
 * `tilesync` with no arguments on a terminal: a menu of the everyday commands. Each choice
 * runs the real command (`tilesync status`, ...) as a child process on this terminal, so its
 * output, progress bars, errors and exit code are exactly those of the command line.
 */

type Action = 'status' | 'commit' | 'log' | 'diff' | 'checkout' | 'push' | 'pull' | 'serve' | 'help' | 'quit'

const BIN = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
const SERVE_COMMAND = fileURLToPath(new URL('../../commands/serve.js', import.meta.url))

export function serveAvailable(): boolean {
  return existsSync(SERVE_COMMAND)
}

/** Runs `tilesync ARGS` on this terminal and waits for it. Ctrl-C stops the command, not the menu. */
export function runTilesync(args: string[], cwd = process.cwd()): Promise<number> {
  return new Promise((resolve) => {
    const ignore = (): void => undefined
    process.on('SIGINT', ignore)
    const child = spawn(process.execPath, [BIN, ...args], {cwd, stdio: 'inherit'})
    const done = (code: number): void => {
      process.off('SIGINT', ignore)
      resolve(code)
    }
    child.on('error', () => done(1))
    child.on('exit', (code, signal) => done(code ?? (signal ? 1 : 0)))
  })
}

async function whereAmI(cwd: string): Promise<{root: string | null; remotes: string[]; branch: string | null}> {
  try {
    const repo = await Repository.find(cwd)
    const head = await repo.refs.readHead()
    return {root: repo.root, remotes: Object.keys(repo.config.remotes).sort(), branch: head.kind === 'branch' ? head.branch : null}
  } catch {
    return {root: null, remotes: [], branch: null}
  }
}

const isCancel = (error: unknown): boolean => ['ExitPromptError', 'AbortPromptError', 'CancelPromptError'].includes((error as {name?: string}).name ?? '')

async function pickRemote(remotes: string[], verb: string): Promise<string[]> {
  if (remotes.length <= 1 || remotes.includes('origin')) return []
  return [await select({message: `${verb} which remote?`, choices: remotes.map((r) => ({value: r, name: r}))})]
}

async function yesNo(message: string): Promise<boolean> {
  return select({message, choices: [{value: true, name: 'Yes'}, {value: false, name: 'No'}], default: false})
}

/** Asks for what the action needs and runs it. */
async function perform(action: Action, cwd: string): Promise<void> {
  const here = await whereAmI(cwd)
  switch (action) {
    case 'status': await runTilesync(['status'], cwd); return
    case 'log': await runTilesync(['log', '-n', '10'], cwd); return
    case 'diff': {
      const rev = (await input({message: 'Compare the database with (empty: HEAD):'})).trim()
      await runTilesync(rev ? ['diff', rev, '--stat'] : ['diff', '--stat'], cwd)
      return
    }
    case 'commit': {
      const message = (await input({message: 'Commit message:', validate: (v) => v.trim() !== '' || 'a commit needs a message'})).trim()
      await runTilesync(['commit', '-m', message], cwd)
      return
    }
    case 'checkout': {
      const rev = (await input({message: 'Revision to check out (e.g. HEAD~1, main, a commit id):', validate: (v) => v.trim() !== '' || 'name a revision'})).trim()
      // Show what would change first; the real checkout only after a yes.
      if ((await runTilesync(['checkout', rev, '--dry-run'], cwd)) !== 0) return
      if (await yesNo(`Check out ${rev}?`)) await runTilesync(['checkout', rev], cwd)
      return
    }
    case 'push': await runTilesync(['push', ...(await pickRemote(here.remotes, 'Push to'))], cwd); return
    case 'pull': await runTilesync(['pull', ...(await pickRemote(here.remotes, 'Pull from'))], cwd); return
    case 'serve':
      if (!serveAvailable()) {
        process.stdout.write('tilesync serve is not available in this version.\n')
        return
      }
      process.stdout.write('Serving; press Ctrl-C to stop and come back to the menu.\n')
      await runTilesync(['serve'], cwd)
      return
    case 'help': await runTilesync(['--help'], cwd); return
    case 'quit': return
  }
}

export async function runMenu(cwd = process.cwd()): Promise<void> {
  for (;;) {
    const here = await whereAmI(cwd)
    const title = here.root ? `tilesync: ${here.root}${here.branch ? ` (on ${here.branch})` : ' (HEAD detached)'}` : 'tilesync: not in a tilesync repository (run `tilesync init` or `tilesync clone`)'
    let action: Action
    try {
      action = await select<Action>({
        message: `${title}\n  What do you want to do?`,
        pageSize: 12,
        choices: [
          {value: 'status', name: 'status', description: 'what changed in the database since the last commit'},
          {value: 'commit', name: 'commit', description: 'snapshot the database'},
          {value: 'log', name: 'log', description: 'the last 10 commits'},
          {value: 'diff', name: 'diff', description: 'the database against HEAD or another revision'},
          {value: 'checkout', name: 'checkout', description: 'make the database equal to a revision (shows what would change first)'},
          {value: 'push', name: 'push', description: 'send the current branch to a remote'},
          {value: 'pull', name: 'pull', description: 'fetch and merge the remote branch'},
          {value: 'serve', name: serveAvailable() ? 'serve' : 'serve (not available)', description: 'serve the tiles over HTTP'},
          {value: 'help', name: 'help', description: 'every command'},
          {value: 'quit', name: 'quit'},
        ],
      })
    } catch (error) {
      if (isCancel(error)) return
      throw error
    }
    if (action === 'quit') return
    try {
      await perform(action, cwd)
    } catch (error) {
      if (!isCancel(error)) throw error
    }
    process.stdout.write('\n')
  }
}
