import * as fs from 'node:fs'
import {createRequire} from 'node:module'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

import {TilesyncError} from '../core/errors.js'

export interface Asset {
  type: string
  bytes: Buffer
}

/** The page's own files: compiled from src/viewer/web/ by `npm run build` (tsconfig.web.json). */
export const WEB_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'web')

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
}

/**
 * Every file the page loads, read once at start and served from memory by exact path: the
 * viewer's HTML, CSS and ES modules (`/app/NAME.js`), and Leaflet from its own package
 * (`/vendor/leaflet.js`, `/vendor/leaflet.css`), so the viewer works with no network.
 */
export function loadWebAssets(): Map<string, Asset> {
  const out = new Map<string, Asset>()
  const add = (url: string, file: string): void => {
    out.set(url, {type: TYPES[path.extname(file)] ?? 'application/octet-stream', bytes: fs.readFileSync(file)})
  }
  let names: string[]
  try {
    names = fs.readdirSync(WEB_DIR)
  } catch {
    names = []
  }
  if (!names.includes('index.html') || !names.includes('main.js')) {
    throw new TilesyncError('BAD_CONFIG', `the viewer's page is not built (nothing in ${WEB_DIR})`, {hint: 'run `npm run build` in the tilesync checkout'})
  }
  for (const name of names) {
    if (name === 'index.html') add('/', path.join(WEB_DIR, name))
    else if (name === 'app.css') add('/app.css', path.join(WEB_DIR, name))
    else if (/^[a-z0-9-]+\.js$/.test(name)) add(`/app/${name}`, path.join(WEB_DIR, name))
  }
  const leaflet = path.dirname(createRequire(import.meta.url).resolve('leaflet'))
  add('/vendor/leaflet.js', path.join(leaflet, 'leaflet.js'))
  add('/vendor/leaflet.css', path.join(leaflet, 'leaflet.css'))
  return out
}
