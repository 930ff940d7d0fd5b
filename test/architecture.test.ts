import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

/**
 * The layering of src/ (docs/architecture.md), checked on the TypeScript sources: every
 * import of every file, static, dynamic and type-only alike, parsed and held to the rules.
 */
const SRC = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src')

/** Each folder of src/ and the folders it may import (its own always). Lowest first. */
const MAY_IMPORT: Record<string, string[]> = {
  core: [],
  util: ['core'],
  store: ['core', 'util'],
  perceptual: ['core', 'util'],
  snapshot: ['core', 'util', 'store'],
  repo: ['core', 'util', 'store'],
  db: ['core', 'util', 'store', 'snapshot', 'repo'],
  history: ['core', 'util', 'store', 'snapshot', 'repo'],
  workspace: ['core', 'util', 'store', 'perceptual', 'snapshot', 'repo', 'db', 'history'],
  dataset: ['core', 'util', 'store', 'perceptual', 'snapshot', 'repo', 'db', 'history', 'workspace'],
  remote: ['core', 'util', 'store', 'perceptual', 'snapshot', 'repo', 'db', 'history', 'workspace', 'dataset'],
  ops: ['core', 'util', 'store', 'perceptual', 'snapshot', 'repo', 'db', 'history', 'workspace', 'dataset', 'remote'],
}
/** Features built on the commands' library: anything below, and each other's helpers. */
const FEATURES = ['cli', 'api', 'release', 'viewer', 'torture', 'bench', 'demo', 'menu', 'sample']
for (const f of FEATURES) MAY_IMPORT[f] = [...MAY_IMPORT.ops, 'ops', ...FEATURES]

/** What the rest of src/ may import from src/remote/: the interface, the registry, the capabilities' results. */
const REMOTE_SURFACE = new Set(['remote/transport.ts', 'remote/registry.ts', 'remote/capabilities.ts'])

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, {recursive: true, withFileTypes: true})
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(SRC, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort()
}

/** Relative imports of a file (static, type-only, re-exports, side-effect and dynamic), resolved to src/-relative .ts paths. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(SRC, file), 'utf8')
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g),
    ...text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g),
    ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]).filter((s) => s.startsWith('.'))
  return specs.map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)).replace(/\.js$/, '.ts'))
}

const folderOf = (file: string): string => file.split('/')[0]

describe('layers of src/ (docs/architecture.md)', () => {
  const files = sourceFiles(SRC)
  const graph = new Map(files.map((f) => [f, importsOf(f)]))

  it('the parser sees the imports, type-only and dynamic ones included', () => {
    expect(graph.get('ops/push.ts')).to.include('remote/transport.ts')
    expect(graph.get('remote/registry.ts')).to.include('remote/oxen/oxen-transport.ts')
    expect(files.length).to.be.greaterThan(100)
    for (const [file, deps] of graph) for (const d of deps) expect(files, `${file} imports ${d}`).to.include(d)
  })

  it('every folder imports only the folders below it', () => {
    const wrong: string[] = []
    for (const [file, deps] of graph) {
      const from = folderOf(file)
      const allowed = MAY_IMPORT[from]
      expect(allowed, `src/${from}/ is placed in the layers`).to.not.equal(undefined)
      for (const d of deps) if (folderOf(d) !== from && !allowed.includes(folderOf(d))) wrong.push(`${file} -> ${d}`)
    }
    expect(wrong).to.deep.equal([])
  })

  it('nothing below src/ops/ imports it', () => {
    const below = Object.keys(MAY_IMPORT).filter((f) => f !== 'ops' && !FEATURES.includes(f))
    const wrong = [...graph].flatMap(([file, deps]) => (below.includes(folderOf(file)) ? deps.filter((d) => folderOf(d) === 'ops').map((d) => `${file} -> ${d}`) : []))
    expect(wrong).to.deep.equal([])
  })

  it('no import cycle anywhere', () => {
    const cycles: string[] = []
    const state = new Map<string, 'open' | 'done'>()
    const stack: string[] = []
    const visit = (f: string): void => {
      state.set(f, 'open')
      stack.push(f)
      for (const d of graph.get(f) ?? []) {
        if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].join(' -> '))
        else if (!state.has(d)) visit(d)
      }
      stack.pop()
      state.set(f, 'done')
    }
    for (const f of files) if (!state.has(f)) visit(f)
    expect(cycles).to.deep.equal([])
  })

  it('outside src/remote/ only the transport interface and the registry are used: remote keys stay private', () => {
    const wrong = [...graph].flatMap(([file, deps]) => (folderOf(file) === 'remote' ? [] : deps.filter((d) => folderOf(d) === 'remote' && !REMOTE_SURFACE.has(d)).map((d) => `${file} -> ${d}`)))
    expect(wrong).to.deep.equal([])
  })

  it('src/ops/ names no kind of remote', () => {
    const named = files.filter((f) => folderOf(f) === 'ops').filter((f) => /\b(oxen|s3|r2)\b/i.test(fs.readFileSync(path.join(SRC, f), 'utf8')))
    expect(named).to.deep.equal([])
  })
})
