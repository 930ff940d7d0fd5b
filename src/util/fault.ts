/**
 * Test hook, off unless TILESYNC_TEST_DISK_FULL_AFTER_BYTES is set: object and ref writes in
 * this thread fail with ENOSPC once that many bytes were written, as on a full disk, so the
 * tests can check that a full disk changes nothing.
 */
const limit = Number(process.env.TILESYNC_TEST_DISK_FULL_AFTER_BYTES ?? Number.NaN)
let written = 0

export function chargeDiskWrite(bytes: number): void {
  if (Number.isNaN(limit)) return
  written += bytes
  if (written > limit) throw Object.assign(new Error('ENOSPC: no space left on device (TILESYNC_TEST_DISK_FULL_AFTER_BYTES)'), {code: 'ENOSPC'})
}
