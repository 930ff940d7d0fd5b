/**
 * The JSON shapes tilesync reads from an oxen hub, reduced to the fields it uses. The hosted
 * hub runs a newer server than the open-source one and adds fields, so every reader keeps
 * unknown keys (the raw object is still there) and checks only what it relies on.
 */

export interface OxenRepository {
  namespace: string
  name: string
  /** True until the first commit exists. Missing on some servers: treat undefined as "unknown". */
  is_empty?: boolean
  [key: string]: unknown
}

export interface OxenBranch {
  name: string
  commit_id: string
  [key: string]: unknown
}

export interface OxenCommit {
  id: string
  parent_ids: string[]
  message: string
  author: string
  email: string
  /** RFC 3339. */
  timestamp: string
  [key: string]: unknown
}

/** A file or directory as the hub lists it (MetadataEntry). `hash` is xxh3-128, unpadded hex. */
export interface OxenEntry {
  filename: string
  hash: string
  is_dir: boolean
  size: number
  latest_commit?: OxenCommit | null
  data_type?: string
  mime_type?: string
  [key: string]: unknown
}

export interface OxenWorkspace {
  id: string
  name?: string | null
  /** The commit the workspace started from (its base). */
  commit: OxenCommit
  [key: string]: unknown
}

export interface OxenChanges {
  added: string[]
  modified: string[]
  removed: string[]
}

/** A file to stage: `path` is relative to the upload directory and uses `/`. */
export interface OxenUploadFile {
  path: string
  bytes: Buffer
}

export interface NewOxenCommit {
  message: string
  author: string
  email: string
}
