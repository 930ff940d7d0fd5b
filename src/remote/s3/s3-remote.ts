import type {RemoteConfig} from '../../repo/config.js'
import type {Backend} from '../backend.js'
import {ObjectStoreTransport} from '../object-store/object-store-transport.js'
import type {OpenContext, RemoteLocation} from '../remote-kind.js'
import type {Transport} from '../transport.js'
import {openS3Backend} from './open-s3-backend.js'

/**
 * r2://BUCKET/prefix and s3://BUCKET/prefix: the AWS SDK loads only here. `cwd` is the
 * repository root when there is one: the `.env` file is found there, wherever inside the
 * repository the command runs.
 */
export async function openBackend(loc: RemoteLocation, config: RemoteConfig, cwd?: string): Promise<Backend> {
  if (loc.form !== 'bucket' || (loc.scheme !== 'r2' && loc.scheme !== 's3')) throw new Error(`not an S3 remote: ${loc.scheme}`)
  return openS3Backend({kind: 's3', flavour: loc.scheme, bucket: loc.bucket, prefix: loc.prefix}, config, cwd === undefined ? {} : {cwd})
}

export async function openTransport(loc: RemoteLocation, config: RemoteConfig, context: OpenContext): Promise<Transport> {
  return new ObjectStoreTransport(await openBackend(loc, config, context.cwd), loc.scheme, config.url, context.name, context.cwd)
}
