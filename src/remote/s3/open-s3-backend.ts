import {TilesyncError} from '../../core/errors.js'
import type {RemoteConfig} from '../../repo/config.js'
import type {Backend} from '../backend.js'
import type {RemoteLocation} from '../remote-url.js'

// Replaced by the S3 backend (issue 3); until then an s3:// or r2:// remote is refused clearly.
export async function openS3Backend(loc: Extract<RemoteLocation, {kind: 's3'}>, _remote: RemoteConfig): Promise<Backend> {
  throw new TilesyncError('REMOTE_UNSUPPORTED', `S3/R2 remotes are not available in this build (${loc.bucket})`, {hint: 'use a directory remote'})
}
