#!/usr/bin/env node
// Entry point: hand the arguments to oclif, which loads only the command being run.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
