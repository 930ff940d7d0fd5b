import type {RemoteConfig} from '../../repo/config.js'
import type {Backend} from '../backend.js'
import {ObjectStoreTransport} from '../object-store/object-store-transport.js'
import type {OpenContext, RemoteLocation} from '../remote-kind.js'
import type {Transport} from '../transport.js'
import {openS3Backend} from './open-s3-backend.js'

/** r2://BUCKET/prefix and s3://BUCKET/prefix: the AWS SDK loads only here. */
export async function openBackend(loc: RemoteLocation, config: RemoteConfig): Promise<Backend> {
  if (loc.form !== 'bucket' || (loc.scheme !== 'r2' && loc.scheme !== 's3')) throw new Error(`not an S3 remote: ${loc.scheme}`)
  return openS3Backend({kind: 's3', flavour: loc.scheme, bucket: loc.bucket, prefix: loc.prefix}, config)
}

export async function openTransport(loc: RemoteLocation, config: RemoteConfig, context: OpenContext): Promise<Transport> {
  return new ObjectStoreTransport(await openBackend(loc, config), loc.scheme, config.url, context.name)
}
