import * as path from 'node:path'

/** Where everything lives inside `.tilesync/`. One place, so no other module builds paths. */
export const STORE_DIR_NAME = '.tilesync'

export class RepoLayout {
  constructor(readonly root: string) {}

  get dir(): string { return path.join(this.root, STORE_DIR_NAME) }
  get config(): string { return path.join(this.dir, 'config.json') }
  get head(): string { return path.join(this.dir, 'HEAD') }
  get objects(): string { return path.join(this.dir, 'objects') }
  get tmp(): string { return path.join(this.dir, 'tmp') }
  get lock(): string { return path.join(this.dir, 'lock') }
  get logs(): string { return path.join(this.dir, 'logs') }
  get mergeState(): string { return path.join(this.dir, 'MERGE_STATE.json') }
  get syncLog(): string { return path.join(this.dir, 'sync-log.jsonl') }
  get shallow(): string { return path.join(this.dir, 'shallow') }
  /** Perceptual hashes and pixel digests of image objects (see perceptual/signature-file.ts). */
  get signatureCache(): string { return path.join(this.dir, 'cache', 'perceptual', 'signatures-v1.bin') }

  ref(name: string): string { return path.join(this.dir, ...name.split('/')) }
  reflog(name: string): string { return path.join(this.logs, ...name.split('/')) }
  remoteState(remote: string): string { return path.join(this.dir, 'remotes', remote) }
}
