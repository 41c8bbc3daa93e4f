// The CORS cases over HTTP/2 (README, "CORS, precisely"): every preflight and actual request of the
// table gets, on an HTTP/2 stream, exactly the answer it gets over HTTP/1.1: the status, every
// Access-Control-* header, Vary and the error code. (The cases' own expectations are in
// cors-decide.test.ts and browser-cors.test.ts; here the protocol must change nothing.)
import t from 'tap'
import { request } from 'undici'
import { readPair } from '../sidecar/tls.ts'
import { makeCa } from './fixtures/certs.ts'
import { h2connect, h2request } from './fixtures/h2.ts'
import { startSidecar } from './fixtures/sidecar.ts'
import { startUpstream } from './fixtures/upstream.ts'

const ca = await makeCa()
t.teardown(ca.remove)
const leaf = await ca.leaf('cors')
const read = await readPair({ certFile: leaf.certFile, keyFile: leaf.keyFile, minVersion: 'TLSv1.2' })
if (!read.ok) throw new Error(read.errors.join('\n'))

const POLICIES: Record<string, string> = {
  plain: `cors:
  allowedOrigins: [https://app.example.com, "https://*.example.com", "http://localhost:*"]
  allowedMethods: [POST, PUT]
  allowedHeaders: [content-type, x-request-id]
  exposedHeaders: [x-request-id]
  maxAge: 600
`,
  credentials: `cors:
  allowedOrigins: [https://app.example.com, "http://localhost:*"]
  allowedMethods: ["*"]
  allowedHeaders: ["*", authorization]
  exposedHeaders: [x-request-id, content-length]
  allowCredentials: true
  allowPrivateNetwork: true
`,
  report: `cors:
  allowedOrigins: [https://app.example.com]
  enforce: false
shadow:
  allowedOrigins: [https://app.example.com, https://new.example.com]
`
}
const ROUTES = 'routes: [{ path: /process/text, methods: [POST, PUT, DELETE] }, { path: /, methods: [GET] }]\n'

type Case = [string, Record<string, string>]
const pre = (origin: string, method: string, extra: Record<string, string> = {}): Case => [`preflight ${origin} ${method} ${JSON.stringify(extra)}`, { method: 'OPTIONS', path: '/process/text', origin, 'access-control-request-method': method, ...extra }]
const act = (origin: string | undefined, method = 'POST', extra: Record<string, string> = {}, path = '/process/text'): Case => [`${method} ${path} from ${origin ?? 'no origin'} ${JSON.stringify(extra)}`, { method, path, ...(origin === undefined ? {} : { origin }), ...extra }]
const CASES: Case[] = [
  pre('https://app.example.com', 'POST'),
  pre('https://app.example.com', 'PUT'),
  pre('https://app.example.com', 'PATCH'),
  pre('https://app.example.com', 'post'),
  pre('https://app.example.com', 'POST', { 'access-control-request-headers': 'content-type' }),
  pre('https://app.example.com', 'POST', { 'access-control-request-headers': 'Content-Type, X-Request-Id' }),
  pre('https://app.example.com', 'POST', { 'access-control-request-headers': 'authorization' }),
  pre('https://app.example.com', 'POST', { 'access-control-request-headers': 'x-other' }),
  pre('https://app.example.com', 'POST', { 'access-control-request-headers': 'not a header' }),
  pre('https://app.example.com', 'POST', { 'access-control-request-private-network': 'true' }),
  pre('https://api.example.com', 'POST'),
  pre('https://a.b.example.com', 'POST'),
  pre('https://example.com', 'POST'),
  pre('http://app.example.com', 'POST'),
  pre('http://localhost:5173', 'POST'),
  pre('https://evil.example', 'POST'),
  pre('null', 'POST'),
  pre('https://App.example.com', 'POST'),
  pre('https://new.example.com', 'POST'),
  act('https://app.example.com'),
  act('https://app.example.com', 'PUT'),
  act('https://app.example.com', 'DELETE'),
  act('https://api.example.com'),
  act('http://localhost:3000'),
  act('https://evil.example'),
  act('https://new.example.com'),
  act('null'),
  act(undefined),
  act('https://app.example.com', 'GET', {}, '/'),
  act('https://app.example.com', 'POST', {}, '/nowhere'),
  act('https://evil.example', 'POST', {}, '/nowhere'),
  act('https://app.example.com', 'OPTIONS'),
  act('https://app.example.com', 'POST', { cookie: 'session=1' })
]

/** What must not differ between the two protocols. */
function essence (status: number, headers: Record<string, unknown>, body: string): Record<string, unknown> {
  const kept = Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith('access-control-') || name === 'vary').sort())
  let code: string | undefined
  try { code = (JSON.parse(body) as { error?: { code: string } }).error?.code } catch { code = undefined }
  return { status, ...kept, code }
}

for (const [name, policy] of Object.entries(POLICIES)) {
  t.test(`the ${name} policy: every case answers the same over HTTP/2 as over HTTP/1.1`, async (t) => {
    const up = await startUpstream()
    t.teardown(up.close)
    const h1 = await startSidecar(policy + ROUTES, up.url, 'silent')
    t.teardown(h1.close)
    const h2 = await startSidecar(policy + ROUTES, up.url, 'silent', { tls: read.pair })
    t.teardown(h2.close)
    const session = await h2connect(h2.url, ca.ca)
    t.teardown(() => { session.destroy() })
    // Same-origin over either protocol is the sidecar's own origin: not in this table.
    const statuses = new Set<number>()
    for (const [label, { method, path, ...headers }] of CASES) {
      const body = method === 'POST' || method === 'PUT' ? '{"text":["x"]}' : undefined
      const one = await request(`${h1.url}${path as string}`, { method: method as 'POST', headers, body })
      const oneBody = await one.body.text()
      const two = await h2request(session, { ':method': method as string, ':path': path as string, ...headers }, body)
      t.same(essence(two.status, two.headers, two.text), essence(one.statusCode, one.headers, oneBody), label)
      statuses.add(two.status)
    }
    t.ok(statuses.has(200) && statuses.has(404), `the table is not one answer: ${[...statuses].join(', ')}`)
  })
}
