import type {Page} from 'playwright-core'
import sharp from 'sharp'

export type RGBA = [number, number, number, number]

/** The map's background where no tile is (app.css --map). */
export const BACKGROUND: RGBA = [0xdd, 0xe1, 0xe7, 255]
/** A tile with no image in the shown layer (pyramid/pixels.ts emptyCell). */
export const NO_IMAGE: RGBA = [180, 180, 180, 255]
export const KIND_COLOURS: Record<string, RGBA> = {added: [0x1a, 0x9e, 0x3f, 255], modified: [0xf0, 0x8c, 0x00, 255], deleted: [0xd7, 0x26, 0x3d, 255]}

export const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i])

/** A screenshot of the page as raw pixels, read at CSS pixel (x, y) (the tests use a device pixel ratio of 1). */
export async function screenshot(page: Page): Promise<{at(x: number, y: number): RGBA; png: Buffer}> {
  const png = await page.screenshot()
  const {data, info} = await sharp(png).ensureAlpha().raw().toBuffer({resolveWithObject: true})
  return {
    png,
    at(x: number, y: number): RGBA {
      const px = Math.floor(x)
      const py = Math.floor(y)
      if (px < 0 || py < 0 || px >= info.width || py >= info.height) throw new Error(`pixel ${px},${py} is off the screenshot`)
      const o = (py * info.width + px) * 4
      return [data[o], data[o + 1], data[o + 2], data[o + 3]]
    },
  }
}

/** The RGBA pixels of a PNG, read at (x, y). */
export async function pngPixels(bytes: Buffer): Promise<{width: number; height: number; at(x: number, y: number): RGBA}> {
  const {data, info} = await sharp(bytes).ensureAlpha().raw().toBuffer({resolveWithObject: true})
  return {
    width: info.width,
    height: info.height,
    at(x: number, y: number): RGBA {
      const o = (y * info.width + x) * 4
      return [data[o], data[o + 1], data[o + 2], data[o + 3]]
    },
  }
}

export async function waitFor(page: Page, expression: string, timeout = 60_000): Promise<void> {
  await page.waitForFunction(expression, undefined, {timeout})
}

/** Waits until every image the page's maps need has arrived. */
export async function waitIdle(page: Page, timeout = 60_000): Promise<void> {
  // Two checks a frame apart: a move schedules its images on the next frame.
  await waitFor(page, 'window.tilesync.idle()', timeout)
  await page.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))')
  await waitFor(page, 'window.tilesync.idle()', timeout)
}

export interface ScreenTile {
  x: number
  y: number
  size: number
}

export async function screenOf(page: Page, x: number, y: number, pane = 0): Promise<ScreenTile> {
  return page.evaluate(`window.tilesync.screenOf(${x}, ${y}, ${pane})`) as Promise<ScreenTile>
}
