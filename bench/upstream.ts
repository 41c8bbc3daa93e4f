// A minimal upstream for the benchmarks, in its own process so it never competes with the load
// generator. Not the stand-in (test/standin/): its detection work would dominate the saturating
// cases and make every proxy look free. Prints its URL on stdout.
//   POST /echo: reads the body, then sends as many bytes back (the streaming case). Not a duplex
//   echo: nginx relays no response before it has sent the whole request body, so a 200 MB duplex
//   echo deadlocks through it ("upstream timed out while reading upstream").
//   anything else: reads the body, then answers ~1 KiB of JSON, the size of a de-identified text;
//   `x-bench-delay: <ms>` holds the answer that long, standing in for the model's work.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'

const ANSWER = JSON.stringify({ processed_text: ['[NAME_1] '.repeat(110)], entities: [] })
const LENGTH = String(Buffer.byteLength(ANSWER))
const CHUNK = Buffer.alloc(64 * 1024, 'y')

function * chunks (bytes: number): Generator<Buffer> {
  for (let left = bytes; left > 0; left -= CHUNK.length) yield left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left)
}

const server = createServer((req, res) => {
  if (req.url === '/echo') {
    let bytes = 0
    req.on('data', (c: Buffer) => { bytes += c.length })
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes) })
      Readable.from(chunks(bytes)).pipe(res)
    })
    return
  }
  const delay = Number(req.headers['x-bench-delay'] ?? 0)
  req.resume()
  req.on('end', () => {
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': LENGTH })
      res.end(ANSWER)
    }
    if (delay > 0) setTimeout(answer, delay)
    else answer()
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
