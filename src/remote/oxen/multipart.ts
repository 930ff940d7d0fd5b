import {randomBytes} from 'node:crypto'

/**
 * Builds a multipart/form-data body by hand rather than through FormData, so each part's
 * filename (a relative path with `/`) and Content-Type (application/gzip) go out exactly as
 * the hub expects, and the body size is known before sending.
 */

export interface MultipartPart {
  /** Form field name; the workspace upload uses `file[]`. */
  name: string
  filename?: string
  contentType?: string
  data: Buffer
}

export interface MultipartBody {
  body: Buffer
  contentType: string
}

export function encodeMultipart(parts: MultipartPart[]): MultipartBody {
  const boundary = `----tilesync${randomBytes(12).toString('hex')}`
  const chunks: Buffer[] = []
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${quote(part.name)}"`
    if (part.filename !== undefined) head += `; filename="${quote(part.filename)}"`
    head += '\r\n'
    if (part.contentType) head += `Content-Type: ${part.contentType}\r\n`
    head += '\r\n'
    chunks.push(Buffer.from(head, 'utf8'), part.data, Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return {body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}`}
}

/** The escaping browsers apply to quoted form-data parameters (WHATWG HTML). */
function quote(value: string): string {
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
}
