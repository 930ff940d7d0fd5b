import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'

import {clone} from '../src/ops/clone.js'
import {commit} from '../src/ops/commit.js'
import {fsckLocal} from '../src/ops/fsck.js'
import {initRepository} from '../src/ops/init.js'
import {push} from '../src/ops/push.js'
import {addRemote} from '../src/ops/remotes.js'
import {decodeIndex} from '../src/store/pack-format.js'
import {Workspace} from '../src/workspace/workspace.js'
import {dumpDatabase, DB_REL, makeProject, tmpDir} from './support/fixtures.js'

const author = {name: 'H', email: 'h@example.com'}

/** A directory remote holding one commit of noisy 96 px tiles (blobs big enough to hash on workers); its data packs. */
async function remoteWithTiles(): Promise<{remote: string; db: string; blobFiles: string[]}> {
  const {dir, db} = makeProject({imageSize: 96, noise: 1})
  await initRepository({dir})
  const ws = await Workspace.open(dir)
  await commit(ws, {message: 'first', author})
  const remote = tmpDir('link-remote')
  addRemote(ws.repo, 'origin', remote)
  await push(ws, {remote: 'origin'})
  const packs = path.join(remote, 'packs')
  const blobFiles = fs.readdirSync(packs).filter((f) => /^d-[0-9a-f]{64}\.pack$/.test(f)).map((f) => path.join(packs, f))
  expect(blobFiles.length).to.be.greaterThan(0)
  return {remote, db, blobFiles}
}

/** A remote pack keeps its name in the clone, less its kind and cut to a local pack's name. */
const localCopyOf = (target: string, remoteFile: string): string =>
  path.join(target, '.tilesync', 'objects', 'pack', `pack-${path.basename(remoteFile).slice(2, 26)}.pack`)

describe('clone from a directory remote: hard links', function () {
  this.timeout(120_000)

  it('links the data packs instead of copying them, and the clone is whole and identical', async () => {
    const {remote, db, blobFiles} = await remoteWithTiles()
    const target = path.join(tmpDir('link-clone'), 'copy')
    await clone({url: remote, dir: target})
    for (const file of blobFiles) {
      const local = localCopyOf(target, file)
      expect(fs.statSync(local).ino, local).to.equal(fs.statSync(file).ino)
    }
    expect(dumpDatabase(path.join(target, DB_REL))).to.deep.equal(dumpDatabase(db))
    expect((await fsckLocal(await Workspace.open(target))).ok).to.equal(true)
  })

  it('--no-hardlinks copies: no object shares a file with the remote', async () => {
    const {remote, db, blobFiles} = await remoteWithTiles()
    const target = path.join(tmpDir('link-clone'), 'copy')
    await clone({url: remote, dir: target, noHardLinks: true})
    const remoteInodes = new Set(blobFiles.map((f) => fs.statSync(f).ino))
    const walk = (d: string): string[] => fs.readdirSync(d, {withFileTypes: true}).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]))
    for (const f of walk(path.join(target, '.tilesync', 'objects'))) expect(remoteInodes.has(fs.statSync(f).ino), f).to.equal(false)
    expect(dumpDatabase(path.join(target, DB_REL))).to.deep.equal(dumpDatabase(db))
  })

  it('a corrupted object on the remote stops the clone with OBJECT_CORRUPT and leaves nothing behind', async () => {
    const {remote, blobFiles} = await remoteWithTiles()
    const victim = blobFiles[0]
    const bytes = fs.readFileSync(victim)
    // Inside a tile image (not a record's header, which the index makes redundant).
    const entries = decodeIndex(fs.readFileSync(victim.replace(/\.pack$/, '.idx')))
    bytes[entries[entries.length >> 1].offset + 100] ^= 0xff
    fs.writeFileSync(victim, bytes)
    const parent = tmpDir('link-clone')
    const target = path.join(parent, 'copy')
    let code = ''
    await clone({url: remote, dir: target}).catch((e: {code: string}) => {
      code = e.code
    })
    expect(code).to.equal('OBJECT_CORRUPT')
    expect(fs.existsSync(target)).to.equal(false)
    expect(fs.readFileSync(victim).equals(bytes), 'the remote file is untouched').to.equal(true)
  })

  it('a remote pack that is a symlink is read (and verified), never linked', async () => {
    const {remote, db, blobFiles} = await remoteWithTiles()
    const victim = blobFiles[0]
    const outside = path.join(tmpDir('link-outside'), 'elsewhere.bin')
    fs.copyFileSync(victim, outside)
    fs.rmSync(victim)
    fs.symlinkSync(outside, victim)
    const target = path.join(tmpDir('link-clone'), 'copy')
    await clone({url: remote, dir: target})
    const walk = (d: string): string[] => fs.readdirSync(d, {withFileTypes: true}).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]))
    for (const f of walk(path.join(target, '.tilesync', 'objects'))) {
      expect(fs.lstatSync(f).isSymbolicLink(), f).to.equal(false)
      expect(fs.statSync(f).ino, f).to.not.equal(fs.statSync(outside).ino)
    }
    expect(dumpDatabase(path.join(target, DB_REL))).to.deep.equal(dumpDatabase(db))
  })
})
