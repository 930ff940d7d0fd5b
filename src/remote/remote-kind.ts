import type {RemoteConfig} from '../repo/config.js'
import type {Backend} from './backend.js'
import type {Transport} from './transport.js'

/** What a module implementing one kind of remote gets and exports (see registry.ts). */

/** How a kind's URLs are written after `scheme://`. */
export type UrlForm = 'path' | 'bucket' | 'repository'

export type RemoteLocation =
  | {form: 'path'; scheme: 'file'; path: string}
  | {form: 'bucket'; scheme: string; bucket: string; prefix: string}
  | {form: 'repository'; scheme: string; namespace: string; repo: string}

/** Knobs a caller (a test, the bench) passes to a transport; each kind reads what it knows. */
export type TransportTuning = Record<string, unknown>

export interface OpenContext {
  /** The remote's name in this repository ("origin"): messages, and where local state about it is kept. */
  name: string
  /** The repository root when there is one: relative directory paths and a `.env` file are found there. */
  cwd?: string
  tuning?: TransportTuning
}

/** What a kind's module exports. */
export interface RemoteKindModule {
  openTransport(loc: RemoteLocation, config: RemoteConfig, context: OpenContext): Promise<Transport>
  /** Object stores only: the raw key/bytes storage (tests). `cwd`: the repository root, if any. */
  openBackend?(loc: RemoteLocation, config: RemoteConfig, cwd?: string): Promise<Backend>
}
