#!/usr/bin/env node
// `npm run demo`: start the demo (demo.ts), print where to look, stop cleanly on Ctrl-C.
import { relative } from 'node:path'
import { parseDemoArgs, startDemo, USAGE, type Demo, type DemoOptions } from './demo.ts'

let opts: DemoOptions
try {
  opts = parseDemoArgs(process.argv.slice(2))
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n\n${USAGE}`)
  process.exit(64)
}
let demo: Demo
try {
  demo = await startDemo(opts)
} catch (err) {
  process.stderr.write(`demo: ${(err as Error).message}\n`)
  // A server that did start would keep the process alive.
  process.exit(1)
}
// Lines for the person who started it. The sidecar's start-up log lines are written
// asynchronously: let them out first, so that this is what the screen ends with.
await new Promise((resolve) => setTimeout(resolve, 100))
process.stdout.write(`
pai-cors-sidecar demo (the API behind it is the development stand-in, NOT Private AI)
  open        ${demo.appUrl}   the demo page, an origin the policy allows
  2nd origin  ${demo.otherUrl}   the same page from an origin it does not allow (shown inside the first)
  sidecar     ${demo.sidecarUrl}   metrics ${demo.adminUrl}/metrics
  policy      ${relative(process.cwd(), opts.policy)} (edits apply live)
Press Ctrl-C to stop.

`)
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => demo.shutdown(signal))
process.exitCode = await demo.done
