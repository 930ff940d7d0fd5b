import {TilesyncError} from '../core/errors.js'
import type {RemoteConfig} from '../repo/config.js'
import type {Backend} from './backend.js'
import {DirectoryBackend} from './directory-backend.js'
import {parseRemoteUrl} from './remote-url.js'

/**
 * Opens the storage behind a configured remote. Backends register by URL scheme (as in
 * rclone); heavy clients (the AWS SDK) load only when such a remote is used.
 */
export async function openBackend(remote: RemoteConfig, cwd?: string): Promise<Backend> {
  // `cwd` is the repository root when there is one: relative directory remotes and the `.env`
  // file are both found there, wherever inside the repository the command runs.
  const loc = parseRemoteUrl(remote.url, cwd)
  switch (loc.kind) {
    case 'directory':
      return new DirectoryBackend(loc.path)
    case 's3': {
      const {openS3Backend} = await import('./s3/open-s3-backend.js')
      return openS3Backend(loc, remote, cwd === undefined ? {} : {cwd})
    }
    case 'oxen':
      throw new TilesyncError('REMOTE_UNSUPPORTED', `${remote.url} is an oxen dataset, not an object store`, {
        hint: 'oxen remotes are pushed and pulled by the oxen transport',
      })
  }
}
