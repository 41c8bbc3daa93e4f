#!/usr/bin/env node
// Process entry: hands argv/env to the CLI, wires signals, sets the exit code. Nothing else.
import { readFileSync } from 'node:fs'
import { run } from './cli/run.ts'

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
process.exitCode = await run(process.argv.slice(2), process.env, {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  started: (running) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => running.shutdown(signal))
  }
}, version)
