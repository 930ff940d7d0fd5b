import type {OxenUploadFile} from './oxen-types.js'

/**
 * Groups files into upload requests of about `maxBytes` each, keeping the caller's order, as
 * the official client does (10 MiB requests). A file larger than `maxBytes` travels alone.
 */
export function planUploadBatches(files: OxenUploadFile[], maxBytes: number): OxenUploadFile[][] {
  const batches: OxenUploadFile[][] = []
  let current: OxenUploadFile[] = []
  let size = 0
  for (const f of files) {
    if (current.length > 0 && size + f.bytes.length > maxBytes) {
      batches.push(current)
      current = []
      size = 0
    }
    current.push(f)
    size += f.bytes.length
  }
  if (current.length > 0) batches.push(current)
  return batches
}

/**
 * Checks a destination path before it goes into a multipart filename: relative, `/`-separated,
 * no `.`/`..` segments, no control characters. Returns the reason it is refused, or null.
 */
export function badUploadPath(p: string): string | null {
  if (p === '') return 'empty path'
  if (p.startsWith('/') || /^[a-zA-Z]:/.test(p)) return 'absolute path'
  if (p.includes('\\')) return 'backslash in path'
  if (/[\u0000-\u001f\u007f]/.test(p)) return 'control character in path'
  const segs = p.split('/')
  if (segs.some((s) => s === '' || s === '.' || s === '..')) return 'empty, "." or ".." segment in path'
  return null
}
