import {TilesyncError} from '../core/errors.js'
import {assertValidRefName} from '../repo/refs.js'
import {checkout, type CheckoutResult} from './checkout.js'
import type {Workspace} from '../workspace/workspace.js'

export interface RefListing {
  name: string
  id: string
  current: boolean
}

export async function listBranches(ws: Workspace): Promise<RefListing[]> {
  const head = await ws.repo.refs.readHead()
  return (await ws.repo.refs.list('refs/heads')).map((r) => ({
    name: r.name.slice('refs/heads/'.length), id: r.id, current: head.kind === 'branch' && head.ref === r.name,
  }))
}

export async function createRef(ws: Workspace, kind: 'heads' | 'tags', name: string, revision = 'HEAD'): Promise<RefListing> {
  assertValidRefName(name, kind === 'heads' ? 'branch name' : 'tag name')
  const ref = `refs/${kind}/${name}`
  if (await ws.repo.refs.read(ref)) {
    throw new TilesyncError('REF_EXISTS', `${kind === 'heads' ? 'branch' : 'tag'} "${name}" already exists`, {hint: 'pick another name or delete it first'})
  }
  const id = await ws.resolve(revision)
  await ws.repo.refs.update(ref, id, `${kind === 'heads' ? 'branch' : 'tag'}: created from ${revision}`, null)
  return {name, id, current: false}
}

export async function deleteRef(ws: Workspace, kind: 'heads' | 'tags', name: string): Promise<RefListing> {
  const ref = `refs/${kind}/${name}`
  const id = await ws.repo.refs.read(ref)
  if (!id) throw new TilesyncError('REF_MISSING', `no ${kind === 'heads' ? 'branch' : 'tag'} "${name}"`, {hint: `list them with \`tilesync ${kind === 'heads' ? 'branch' : 'tag'}\``})
  const head = await ws.repo.refs.readHead()
  if (kind === 'heads' && head.kind === 'branch' && head.ref === ref) {
    throw new TilesyncError('BAD_ARGUMENT', `cannot delete the current branch "${name}"`, {hint: 'switch to another branch first'})
  }
  await ws.repo.refs.update(ref, null, `${kind === 'heads' ? 'branch' : 'tag'}: deleted`, id)
  return {name, id, current: false}
}

export async function listTags(ws: Workspace): Promise<RefListing[]> {
  return (await ws.repo.refs.list('refs/tags')).map((r) => ({name: r.name.slice('refs/tags/'.length), id: r.id, current: false}))
}

/**
 * `switch NAME` checks out an existing branch; with `create`, makes the branch at HEAD (or
 * `from`) first. A new branch at HEAD needs no database write at all.
 */
export async function switchBranch(ws: Workspace, name: string, options: {create?: boolean; from?: string; force?: boolean} = {}): Promise<CheckoutResult> {
  if (options.create) {
    const headId = await ws.repo.refs.headCommit()
    if (!headId && !options.from) {
      // No commits yet: just point HEAD at the new, unborn branch.
      assertValidRefName(name, 'branch name')
      await ws.repo.refs.setHead({kind: 'branch', ref: `refs/heads/${name}`, branch: name}, `switch: to new branch ${name}`)
      return {target: '', head: '', detached: false, partial: false, rowsWritten: 0, rowsDeleted: 0, tilesChanged: 0, savedAs: null}
    }
    await createRef(ws, 'heads', name, options.from ?? 'HEAD')
  } else if (!(await ws.repo.refs.read(`refs/heads/${name}`))) {
    throw new TilesyncError('REF_MISSING', `no branch "${name}"`, {hint: `create it with \`tilesync switch -c ${name}\``})
  }
  return checkout(ws, {revision: name, force: options.force})
}
