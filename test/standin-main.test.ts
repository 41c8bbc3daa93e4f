import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { parseCli } from './standin/server.ts'

t.test('parseCli', async (t) => {
  t.same(parseCli([]), { host: '127.0.0.1', port: 8080, delayMs: 0 })
  t.same(parseCli(['--host', '0.0.0.0', '--port', '0', '--delay-ms', '250']), { host: '0.0.0.0', port: 0, delayMs: 250 })
  t.same(parseCli(['--port=9090']), { host: '127.0.0.1', port: 9090, delayMs: 0 })
  t.throws(() => parseCli(['--port', 'http']), { message: '--port must be an integer from 0 to 65535, got "http"' })
  t.throws(() => parseCli(['--port', '65536']), /--port must be an integer/)
  t.throws(() => parseCli(['--delay-ms=-1']), /--delay-ms must be an integer/)
  t.throws(() => parseCli(['--verbose']), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' })
})

t.test('main.ts runs as a process and stops cleanly on SIGTERM', async (t) => {
  const child = spawn(process.execPath, ['test/standin/main.ts', '--port', '0'], {
    cwd: join(import.meta.dirname, '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  child.stdout.setEncoding('utf8')
  const [line] = (await once(child.stdout, 'data')) as [string]
  t.match(line, /development stand-in \(NOT the real product\)/)
  const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1]
  t.ok(url, 'prints its URL')

  const res = await fetch(`${url}/healthz`)
  t.equal(res.status, 200)
  t.same(await res.json(), { status: 'ok' })

  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const [code, signal] = await exited
  t.equal(code, 0)
  t.equal(signal, null)
  t.match(stderr, 'standin request {"method":"GET","handler":"/healthz","status":200')
})
