#!/usr/bin/env node
// Entry point. `--version` is answered here, before oclif and any command module load,
// because it is the one thing scripts call in a loop; everything else goes to oclif, which
// (with oclif.manifest.json) imports only the command being run. With no arguments on a
// terminal, the interactive menu is loaded instead (and oclif only by the commands it runs).
import {readFileSync} from 'node:fs'

const args = process.argv.slice(2)
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v' || args[0] === 'version')) {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  process.stdout.write(`${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`)
} else if (args.length === 0 && process.stdin.isTTY && process.stdout.isTTY) {
  const {runMenu} = await import('../dist/src/menu/menu.js')
  await runMenu()
} else {
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
}
