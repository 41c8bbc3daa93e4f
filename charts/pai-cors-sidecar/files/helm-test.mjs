// `helm test`: a real preflight and a real request through the Service, checked as a browser would.
// Runs with `node` in the sidecar's own image (no shell, no curl needed). Environment: TARGET (the
// Service URL), ORIGIN (an allowed origin; empty when none is configured), TEST_PATH (a GET route),
// AUTH ("required" when auth is configured: the test holds no credential, so the request must get the
// sidecar's 401, readable by the page, and must not reach the API), and with tls.enabled TLS_CERT,
// the Secret's tls.crt: the Service's name is not among the certificate's dnsNames, so the
// certificate served is checked against the Secret's instead.
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { connect } from 'node:tls'

const target = process.env.TARGET
const origin = process.env.ORIGIN
const path = process.env.TEST_PATH || '/'
const authRequired = process.env.AUTH === 'required'
const refused = 'https://helm-test-refused.invalid'
let failures = 0
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
  if (!ok) failures++
}
const timeout = () => AbortSignal.timeout(15000)

const url = new URL(target)
const pinned = url.protocol === 'https:' ? new X509Certificate(readFileSync(process.env.TLS_CERT)).fingerprint256 : undefined

/** fetch, or over HTTPS one request on a connection that presents the Secret's certificate. */
async function fetch (to, init) {
  if (pinned === undefined) return globalThis.fetch(to, init)
  return await new Promise((resolve, reject) => {
    const req = request(to, { method: init.method ?? 'GET', headers: init.headers, rejectUnauthorized: false, signal: init.signal }, (res) => {
      res.resume()
      resolve({ status: res.statusCode, ok: res.statusCode >= 200 && res.statusCode < 300, headers: { get: (name) => res.headers[name] ?? null } })
    })
    req.on('socket', (socket) => {
      socket.once('secureConnect', () => {
        if (socket.getPeerX509Certificate()?.fingerprint256 !== pinned) req.destroy(new Error('the certificate served is not the one in the Secret'))
      })
    })
    req.on('error', reject)
    req.end()
  })
}

if (pinned !== undefined) {
  const socket = connect({ host: url.hostname, port: Number(url.port || 443), ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false, servername: url.hostname })
  await new Promise((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject) })
  check(socket.getPeerX509Certificate()?.fingerprint256 === pinned, 'the sidecar serves the certificate of the Secret')
  check(socket.alpnProtocol === 'h2', `ALPN picks HTTP/2 (got ${socket.alpnProtocol})`)
  socket.destroy()
}

if (origin) {
  const pre = await fetch(target + path, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    signal: timeout()
  })
  check(pre.status === 204, `preflight from ${origin} answered 204 (got ${pre.status})`)
  check([origin, '*'].includes(pre.headers.get('access-control-allow-origin')), `preflight allows the origin (got ${pre.headers.get('access-control-allow-origin')})`)
  check(/content-type|\*/.test(pre.headers.get('access-control-allow-headers') ?? ''), 'preflight allows content-type')

  const res = await fetch(target + path, { headers: { origin }, signal: timeout() })
  if (authRequired) {
    check(res.status === 401 && /^Bearer realm=/.test(res.headers.get('www-authenticate') ?? ''), `GET ${path} from ${origin} without credentials is refused with 401 and WWW-Authenticate (got ${res.status})`)
  } else {
    check(res.ok, `GET ${path} from ${origin} reaches the API (got ${res.status})`)
  }
  check([origin, '*'].includes(res.headers.get('access-control-allow-origin')), 'the answer carries Access-Control-Allow-Origin')
  check(res.headers.get('x-request-id') !== null, 'the answer carries X-Request-Id')
  await res.body?.cancel()
}

const denied = await fetch(target + path, {
  method: 'OPTIONS',
  headers: { origin: refused, 'access-control-request-method': 'POST' },
  signal: timeout()
})
check(denied.headers.get('access-control-allow-origin') !== refused, `a preflight from ${refused} is not allowed (got ${denied.status})`)

process.exitCode = failures === 0 ? 0 : 1
