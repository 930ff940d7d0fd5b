import {TilesyncError} from '../core/errors.js'
import {nearest} from '../util/nearest.js'

/** What a parse error needs to know about the command that was being parsed. */
export interface CommandShape {
  /** How the user typed the command: "status", "remote add". */
  name: string
  /** Flag names (without dashes) and their one-letter aliases. */
  flags: Record<string, {char?: string}>
}

type OclifParseError = Error & {flags?: string[]; args?: Array<{name?: string} | string>; parse?: unknown}

// oclif adds this to every parse error; the line it stands for is the hint we give instead.
const HELP_SUFFIX = /\s*See more help with --help\s*$/
// oclif colours parts of its messages for terminals.
const ANSI = /\u001B\[[0-9;]*m/g

const helpHint = (command: CommandShape): string => `see \`tilesync ${command.name} --help\``

/**
 * Turns oclif's parse errors (unknown flag, missing flag or argument, a bad flag value) into
 * TilesyncErrors, so they come out as every other error does: one line, exit code 1, JSON with
 * a stable code under --json, and the nearest flag when one was mistyped. Anything that is not
 * a parse error is returned as undefined.
 */
export function parseErrorOf(err: unknown, command: CommandShape): TilesyncError | undefined {
  const e = err as OclifParseError
  if (typeof e !== 'object' || e === null || !('parse' in e)) return undefined
  const text = (e.message ?? '').replace(ANSI, '').replace(HELP_SUFFIX, '').trim()
  switch (e.constructor?.name) {
    case 'NonExistentFlagsError': {
      const given = (e.flags ?? []).map(String)
      const first = given[0] ?? ''
      const names = Object.keys(command.flags)
      const guess = first.startsWith('--') ? nearest(first.slice(2).split('=')[0], names) : undefined
      return new TilesyncError('UNKNOWN_FLAG', `unknown flag${given.length === 1 ? '' : 's'} ${given.join(', ')} for \`tilesync ${command.name}\``, {
        hint: guess ? `did you mean --${guess}? ${helpHint(command)}` : `${helpHint(command)} for its flags`,
      })
    }
    case 'RequiredArgsError': {
      const names = (e.args ?? []).map((a) => (typeof a === 'string' ? a : a.name ?? '')).filter(Boolean)
      return new TilesyncError('MISSING_ARGUMENT', `\`tilesync ${command.name}\` needs ${names.length ? names.map((n) => n.toUpperCase()).join(', ') : 'more arguments'}`, {
        hint: helpHint(command),
      })
    }
    case 'UnexpectedArgsError':
      return new TilesyncError('BAD_ARGUMENT', `${lowerFirst(text)} for \`tilesync ${command.name}\``, {hint: helpHint(command)})
    case 'FailedFlagValidationError': {
      const reasons = text.split('\n').slice(1).map((l) => l.trim()).filter(Boolean)
      const missing = reasons.map((r) => /^Missing required flag (\S+)/.exec(r)?.[1]).filter((f): f is string => Boolean(f))
      if (missing.length === reasons.length && missing.length > 0) {
        const spelled = missing.map((f) => (command.flags[f]?.char ? `--${f} (-${command.flags[f].char})` : `--${f}`))
        return new TilesyncError('MISSING_ARGUMENT', `\`tilesync ${command.name}\` needs ${spelled.join(' and ')}`, {hint: helpHint(command)})
      }
      return new TilesyncError('BAD_ARGUMENT', reasons.map(lowerFirst).join('; ') || lowerFirst(text), {hint: helpHint(command)})
    }
    default:
      return new TilesyncError('BAD_ARGUMENT', lowerFirst(text.split('\n')[0] ?? 'bad arguments'), {hint: helpHint(command)})
  }
}

const lowerFirst = (s: string): string => (s ? s[0].toLowerCase() + s.slice(1) : s)
