// DEVELOPMENT STAND-IN FOR THE PRIVATE AI CONTAINER — NOT THE REAL PRODUCT.
//
//   node test/standin/main.ts [--host 127.0.0.1] [--port 8080] [--delay-ms 0]
//
// Prints one line with its URL on stdout, request lines (no bodies) on stderr,
// and exits 0 on SIGINT/SIGTERM. The logic lives in server.ts, where it is tested.

import { parseCli, startStandin, stderrLogger } from './server.ts'

const standin = await startStandin({ ...parseCli(process.argv.slice(2)), logger: stderrLogger })
// A command-line line for the person who started it, not a log line: no request data in it.
process.stdout.write(`Private AI development stand-in (NOT the real product) listening on ${standin.url}\n`)

const stop = (): void => {
  void standin.close()
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
