import type {Hook} from '@oclif/core'

import {TilesyncError} from '../core/errors.js'
import {nearest} from '../util/nearest.js'
import {printError} from './print-error.js'

/**
 * oclif's `command_not_found` hook: a mistyped command is an error like any other (one line,
 * exit code 1, JSON under --json) and names the nearest command ("did you mean commit?").
 */
const hook: Hook<'command_not_found'> = async function (options) {
  // oclif joins topic, command and the words after them with ':'; users type spaces. Only the
  // words that can name a command count: two after a topic (`remote ad`), else one.
  const known = [...options.config.commandIDs].map((id) => id.replaceAll(':', ' '))
  const topics = new Set(known.filter((k) => k.includes(' ')).map((k) => k.split(' ')[0]))
  const words = options.id.split(':')
  const typed = words.slice(0, topics.has(words[0]) ? 2 : 1).join(' ')
  const guess = nearest(typed, [...known, ...topics])
  const error = new TilesyncError('UNKNOWN_COMMAND', `"${typed}" is not a tilesync command`, {
    hint: guess ? `did you mean \`tilesync ${guess}\`? See \`tilesync --help\`` : 'see `tilesync --help` for the commands',
  })
  printError(error, (options.argv ?? []).includes('--json'))
}

export default hook
