// `helm test`: a real preflight and a real request through the Service, checked as a browser would.
// Runs with `node` in the sidecar's own image (no shell, no curl needed). Environment: TARGET (the
// Service URL), ORIGIN (an allowed origin; empty when none is configured), TEST_PATH (a GET route),
// AUTH ("required" when auth is configured: the test holds no credential, so the request must get the
// sidecar's 401, readable by the page, and must not reach the API).
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
