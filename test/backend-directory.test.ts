import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import {DirectoryBackend} from '../src/remote/directory-backend.js'
import {runBackendConformance} from './support/backend-conformance.js'

runBackendConformance('directory', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dir-remote-'))
  return {
    backend: new DirectoryBackend(root),
    cleanup: async () => fs.rmSync(root, {recursive: true, force: true}),
  }
})
