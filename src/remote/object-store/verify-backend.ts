import {randomBytes} from 'node:crypto'

import type {Backend} from '../backend.js'
import type {VerifyCheck} from '../capabilities.js'

/**
 * Proves a remote is usable by doing, on a scratch key, what push and pull will do: write,
 * read back, list, delete. Never throws for a failing check: each failure is reported with
 * its reason. The scratch key is removed even when a step fails.
 */
export async function verifyBackend(backend: Backend): Promise<VerifyCheck[]> {
  const key = `tmp/verify-${randomBytes(8).toString('hex')}`
  const payload = randomBytes(64)
  const results: VerifyCheck[] = []
  let written = false
  let deleted = false

  try {
    try {
      await backend.put(key, payload)
      written = true
      results.push({check: 'write', ok: true, detail: `wrote ${payload.length} bytes to ${key}`})
    } catch (error) {
      results.push({check: 'write', ok: false, detail: describe(error)})
    }

    try {
      const back = await backend.get(key)
      if (!written) {
        results.push({check: 'read', ok: back === null, detail: back === null ? 'reading works (an absent key reads as missing); nothing was written to read back' : `read ${key} though writing it failed`})
      } else if (back === null) {
        results.push({check: 'read', ok: false, detail: `${key} was written but reads back as missing`})
      } else if (!back.equals(payload)) {
        results.push({check: 'read', ok: false, detail: `${key} read back ${back.length} bytes that differ from the ${payload.length} written`})
      } else {
        results.push({check: 'read', ok: true, detail: `read back ${back.length} identical bytes`})
      }
    } catch (error) {
      results.push({check: 'read', ok: false, detail: describe(error)})
    }

    try {
      let count = 0
      let found = false
      for await (const k of backend.list('tmp/')) {
        count++
        if (k.key === key) found = true
      }
      if (written && !found) results.push({check: 'list', ok: false, detail: `listing tmp/ (${count} keys) does not show ${key}`})
      else results.push({check: 'list', ok: true, detail: written ? `listing tmp/ shows ${key}` : `listed tmp/ (${count} keys)`})
    } catch (error) {
      results.push({check: 'list', ok: false, detail: describe(error)})
    }

    try {
      await backend.delete(key)
      deleted = true
      const after = written ? await backend.get(key) : null
      if (after !== null) results.push({check: 'delete', ok: false, detail: `${key} still reads back after delete`})
      else results.push({check: 'delete', ok: true, detail: written ? `deleted ${key}` : 'delete accepted'})
    } catch (error) {
      results.push({check: 'delete', ok: false, detail: describe(error)})
    }
  } finally {
    if (written && !deleted) await backend.delete(key).catch(() => undefined)
  }
  return results
}

function describe(error: unknown): string {
  const e = error as {code?: unknown; oneLine?: string; message?: string}
  const text = e?.oneLine ?? e?.message ?? String(error)
  return typeof e?.code === 'string' && e.oneLine ? `${e.code}: ${text}` : text
}
