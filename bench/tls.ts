// `npm run bench:tls [-- --seconds 5 --rounds 2 --clients 64 --streams 8 --no-pin]`: the HTTPS cases
// alone (bench/tls-cases.ts; `npm run bench` runs them after its own cases).
import { parseArgs } from 'node:util'
import { nginxBinary } from './nginx.ts'
import { formatTls, h2loadBinary, runTlsBench } from './tls-cases.ts'

const { values: v } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
    clients: { type: 'string', default: '64' },
    streams: { type: 'string', default: '8' },
    'no-pin': { type: 'boolean', default: false }
  }
})
if (h2loadBinary() === undefined) {
  console.error('h2load is not installed (apt-get install nghttp2-client)')
  process.exit(2)
}
const report = await runTlsBench({
  seconds: Number(v.seconds),
  rounds: Number(v.rounds),
  clients: Number(v.clients),
  streams: Number(v.streams),
  pin: v['no-pin'] !== true,
  nginx: nginxBinary(),
  log: (line) => process.stderr.write(`${line}\n`)
})
console.log(formatTls(report))
