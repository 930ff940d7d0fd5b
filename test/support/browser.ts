import * as fs from 'node:fs'
import * as path from 'node:path'

import {type Browser, chromium} from 'playwright-core'

import {commit} from '../../src/ops/commit.js'
import {initRepository} from '../../src/ops/init.js'
import {Workspace} from '../../src/workspace/workspace.js'
import {REPO_ROOT} from './cli.js'
import {setGeneration, setNotes} from './edit.js'
import {makeProject, withDb} from './fixtures.js'

/** Debian's chromium; `.ci/run` installs it when missing. */
export const CHROMIUM = process.env.TILESYNC_CHROMIUM ?? '/usr/bin/chromium'

/** Screenshots and other files the browser tests leave for people to look at (gitignored). */
export const OUTPUT_DIR = path.join(REPO_ROOT, 'test-output')

/**
 * Starts headless chromium. A missing browser is a failure with a clear message, never a
 * skip: these tests are the only proof that the pages work in a real browser.
 */
export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`chromium not found at ${CHROMIUM}: the browser tests need it. Install it with \`apt-get update && apt-get install -y chromium\` (.ci/run does this), or set TILESYNC_CHROMIUM to another chromium binary.`)
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The machine has no network beyond loopback: keep chromium from trying to reach out.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  })
}

export function outputFile(name: string): string {
  fs.mkdirSync(OUTPUT_DIR, {recursive: true})
  return path.join(OUTPUT_DIR, name)
}

/** A tile as the map should show it: x, y, and bit i set when image layer i (render, generation) is not NULL. */
export type TileMask = [number, number, number]

export interface ViewerRepo {
  dir: string
  db: string
  ws: Workspace
  /** Oldest first: first snapshot, night run, fix. */
  commits: string[]
  /** The tiles of each commit id and of `working`, sorted by y then x. */
  tilesAt: Record<string, TileMask[]>
}

/** The tiles in the database now, with which layers hold an image. */
export function tilesOf(db: string): TileMask[] {
  return withDb(db, (d) => (d.prepare('SELECT quadrant_x AS x, quadrant_y AS y, (render IS NOT NULL) | ((generation IS NOT NULL) << 1) AS m FROM quadrants ORDER BY quadrant_y, quadrant_x').all() as Array<{x: number; y: number; m: number}>).map((r) => [r.x, r.y, r.m] as TileMask))
}

export function sortTiles(tiles: TileMask[]): TileMask[] {
  return [...tiles].sort((a, b) => a[1] - b[1] || a[0] - b[0])
}

/**
 * A repository with three commits and uncommitted work, small enough to check tile by tile:
 * 24x14 tiles of 16 px (some without a generation image), then a night run that modifies
 * three images, changes a note, deletes 10,5 and adds 13,0 (render NULL), then a fix of 0,0;
 * the working database changes 0,0 once more and adds 14,1.
 */
export async function makeViewerRepo(): Promise<ViewerRepo> {
  const {dir, db} = makeProject({width: 24, height: 14, imageSize: 16, seed: 7})
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  const author = {name: 'Ada Viewer', email: 'ada@example.com'}
  const commits: string[] = []
  const tilesAt: Record<string, TileMask[]> = {}
  const snap = async (message: string): Promise<void> => {
    const r = await commit(ws, {message, author})
    commits.push(r.id!)
    tilesAt[r.id!] = tilesOf(db)
  }
  await snap('first snapshot')
  setGeneration(db, 0, 0, 101)
  setGeneration(db, 1, 0, 102)
  setGeneration(db, -5, -3, 103)
  setNotes(db, 2, 2, 'reviewed')
  withDb(db, (d) => d.prepare('DELETE FROM quadrants WHERE quadrant_x = 10 AND quadrant_y = 5').run())
  setGeneration(db, 13, 0, 104)
  await snap('night run: regenerate three tiles')
  setGeneration(db, 0, 0, 105)
  await snap('fix 0,0')
  setGeneration(db, 0, 0, 106)
  setGeneration(db, 14, 1, 107)
  tilesAt.working = tilesOf(db)
  return {dir, db, ws, commits, tilesAt}
}
