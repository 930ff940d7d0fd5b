/**
 * The build's last step for the viewer: the page's HTML and CSS next to its compiled modules
 * (tsconfig.web.json compiles src/viewer/web/*.ts to dist/src/viewer/web/), where `serve`
 * reads them. They are source files, not strings in code.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const from = path.join(root, 'src', 'viewer', 'web')
const to = path.join(root, 'dist', 'src', 'viewer', 'web')
fs.mkdirSync(to, {recursive: true})
const copied = fs.readdirSync(from).filter((f) => f.endsWith('.html') || f.endsWith('.css'))
for (const f of copied) fs.copyFileSync(path.join(from, f), path.join(to, f))
const modules = fs.readdirSync(to).filter((f) => f.endsWith('.js')).length
console.log(`viewer page: ${copied.length} files copied, ${modules} modules in dist/src/viewer/web`)
