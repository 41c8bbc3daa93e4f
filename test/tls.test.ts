// server.tls (README, "HTTPS and HTTP/2"): the pair is read and checked at start, the public port
// speaks TLS 1.2 and 1.3 with ALPN choosing h2 or http/1.1, the admin port stays plain HTTP, and
// files that cannot serve refuse to start. Certificates are made here (fixtures/certs.ts).
import t from 'tap'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { run } from '../sidecar/cli/run.ts'
import { validate } from '../sidecar/config/load.ts'
import { serve, type Running } from '../sidecar/server.ts'
import { readPair, type TlsPair } from '../sidecar/tls.ts'
import { makeCa } from './fixtures/certs.ts'
import { h2connect, h2request } from './fixtures/h2.ts'
import { snapshot, startSidecar } from './fixtures/sidecar.ts'
import { startUpstream } from './fixtures/upstream.ts'

const ca = await makeCa()
t.teardown(ca.remove)
const leaf = await ca.leaf('leaf')
const other = await ca.leaf('other')

async function pair (minVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.2'): Promise<TlsPair> {
  const r = await readPair({ certFile: leaf.certFile, keyFile: leaf.keyFile, minVersion })
  if (!r.ok) throw new Error(r.errors.join('\n'))
  return r.pair
}

/** A TLS handshake with the sidecar: the version and the protocol ALPN picked, or the error. */
async function handshake (url: string, opts: { maxVersion?: 'TLSv1.2' | 'TLSv1.3', ALPNProtocols?: string[] }): Promise<{ version: string | null, alpn: string | false | null } | Error> {
  const u = new URL(url)
  const socket: TLSSocket = tlsConnect({ host: u.hostname, port: Number(u.port), ca: ca.ca, servername: 'localhost', ...opts })
  try {
    await once(socket, 'secureConnect')
    return { version: socket.getProtocol(), alpn: socket.alpnProtocol }
  } catch (err) {
    return err as Error
  } finally {
    socket.destroy()
  }
}

t.test('a pair is read with its serial and expiry; every unusable pair is refused with its field, never quoting the key', async (t) => {
  const p = await pair()
  t.equal(p.serial, leaf.serial)
  t.ok(p.validTo.getTime() > Date.now())
  t.equal(p.options.minVersion, 'TLSv1.2')
  const dir = t.testdir({ 'not-pem': 'hello', 'broken-chain.crt': '' })
  await writeFile(join(dir, 'broken-chain.crt'), Buffer.concat([leaf.cert, Buffer.from('-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n')]))
  const cases: [string, string, RegExp[]][] = [
    [join(dir, 'missing.crt'), leaf.keyFile, [/^server\.tls\.certFile: ".*missing\.crt" cannot be read \(ENOENT\)$/]],
    [leaf.certFile, join(dir, 'missing.key'), [/^server\.tls\.keyFile: ".*missing\.key" cannot be read \(ENOENT\)$/]],
    [join(dir, 'a'), join(dir, 'b'), [/certFile.*ENOENT/, /keyFile.*ENOENT/]],
    [join(dir, 'not-pem'), leaf.keyFile, [/^server\.tls\.certFile: ".*not-pem" holds no PEM certificate$/]],
    [leaf.certFile, join(dir, 'not-pem'), [/^server\.tls\.keyFile: ".*not-pem" holds no PEM private key$/]],
    [leaf.certFile, other.keyFile, [/^server\.tls: the key in ".*other\.key" does not match the certificate in ".*leaf\.crt"$/]],
    [join(dir, 'broken-chain.crt'), leaf.keyFile, [/^server\.tls\.certFile: ".*broken-chain\.crt" cannot be used/]]
  ]
  for (const [certFile, keyFile, want] of cases) {
    const r = await readPair({ certFile, keyFile, minVersion: 'TLSv1.2' })
    t.equal(r.ok, false, `${certFile} + ${keyFile}`)
    if (r.ok) continue
    t.equal(r.errors.length, want.length)
    want.forEach((re, i) => t.match(r.errors[i], re))
    t.notMatch(r.errors.join('\n'), /PRIVATE KEY/)
  }
})

t.test('the configuration refuses a certFile without a keyFile (and the reverse) and an old TLS version', async (t) => {
  const cases: [string, RegExp][] = [
    ['server: { tls: { certFile: /x.crt } }', /server\.tls: must have required property 'keyFile'/],
    ['server: { tls: { keyFile: /x.key } }', /server\.tls: must have required property 'certFile'/],
    ['server: { tls: { certFile: /x.crt, keyFile: /x.key, minVersion: TLSv1.1 } }', /server\.tls\.minVersion: must be one of TLSv1\.2, TLSv1\.3/],
    ['server: { tls: { certFile: "", keyFile: /x.key } }', /server\.tls\.certFile/]
  ]
  for (const [text, want] of cases) {
    const r = validate(text, 'test')
    t.equal(r.ok, false, text)
    if (!r.ok) t.match(r.errors.join('\n'), want)
  }
  const ok = validate('server: { tls: { certFile: /x.crt, keyFile: /x.key } }', 'test')
  t.ok(ok.ok)
  if (ok.ok) t.equal(ok.config.server.tls?.minVersion, 'TLSv1.2', 'TLS 1.2 by default')
})

t.test('TLS 1.2 and 1.3 handshakes; ALPN picks h2, then http/1.1; minVersion TLSv1.3 refuses a TLS 1.2 client', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const s = await startSidecar('', up.url, 'silent', { tls: await pair() })
  t.teardown(s.close)
  t.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/)
  t.same(await handshake(s.url, { maxVersion: 'TLSv1.2', ALPNProtocols: ['h2', 'http/1.1'] }), { version: 'TLSv1.2', alpn: 'h2' })
  t.same(await handshake(s.url, { maxVersion: 'TLSv1.3', ALPNProtocols: ['h2', 'http/1.1'] }), { version: 'TLSv1.3', alpn: 'h2' })
  t.same(await handshake(s.url, { ALPNProtocols: ['http/1.1', 'h2'] }), { version: 'TLSv1.3', alpn: 'h2' }, 'the server prefers h2')
  t.same(await handshake(s.url, { ALPNProtocols: ['http/1.1'] }), { version: 'TLSv1.3', alpn: 'http/1.1' })
  t.same(await handshake(s.url, {}), { version: 'TLSv1.3', alpn: false }, 'no ALPN: HTTP/1.1')

  const strict = await startSidecar('', up.url, 'silent', { tls: await pair('TLSv1.3') })
  t.teardown(strict.close)
  t.same(await handshake(strict.url, { maxVersion: 'TLSv1.3' }), { version: 'TLSv1.3', alpn: false })
  const refused = await handshake(strict.url, { maxVersion: 'TLSv1.2' })
  t.ok(refused instanceof Error, 'a TLS 1.2 client is refused')
})

t.test('the same request over HTTP/1.1 on TLS and over HTTP/2 reaches the upstream as HTTP/1.1, with X-Forwarded-Proto https', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const s = await startSidecar('cors: { allowedOrigins: [https://app.example.com] }\nroutes: [{ path: /process/text, methods: [POST] }]\n', up.url, 'silent', { tls: await pair() })
  t.teardown(s.close)
  const u = new URL(s.url)
  const h1 = await new Promise<{ status: number | undefined, id: string, body: string }>((resolve, reject) => {
    const req = httpsRequest({ host: u.hostname, port: u.port, path: '/process/text', method: 'POST', ca: ca.ca, servername: 'localhost', headers: { origin: 'https://app.example.com', 'content-type': 'application/json' } }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode, id: res.headers['x-request-id'] as string, body }) })
    })
    req.on('error', reject)
    req.end('{"text":["hi"]}')
  })
  t.equal(h1.status, 200)
  const session = await h2connect(s.url, ca.ca)
  t.teardown(() => { session.close() })
  const h2 = await h2request(session, { ':method': 'POST', ':path': '/process/text', origin: 'https://app.example.com', 'content-type': 'application/json', cookie: 'a=1', 'x-custom': 'yes' }, '{"text":["hi"]}')
  t.equal(h2.status, 200)
  t.equal(h2.headers['access-control-allow-origin'], 'https://app.example.com')
  for (const id of [h1.id, h2.headers['x-request-id'] as string]) {
    const got = up.received.find((r) => r.headers['x-request-id'] === id)
    t.equal(got?.headers['x-forwarded-proto'], 'https')
    t.equal(got?.headers.host, new URL(up.url).host)
    t.equal(got?.headers['x-forwarded-host'], u.host, 'HTTP/2 :authority is the addressed host')
  }
  const got = up.received.find((r) => r.headers['x-request-id'] === h2.headers['x-request-id'])
  t.equal(got?.headers['x-custom'], 'yes')
  t.notOk(Object.keys(got?.headers ?? {}).some((name) => name.startsWith(':')), 'no pseudo-header goes upstream')
})

t.test('HTTP/2 cookie crumbs go upstream as one Cookie line (RFC 9113 §8.2.3)', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const s = await startSidecar('routes: [{ path: /process/text, methods: [POST] }]\n', up.url, 'silent', { tls: await pair() })
  t.teardown(s.close)
  const session = await h2connect(s.url, ca.ca)
  t.teardown(() => { session.close() })
  const a = await h2request(session, { ':method': 'POST', ':path': '/process/text', cookie: ['a=1', 'b=2'] }, '{}')
  t.equal(a.status, 200)
  t.equal(up.received.find((r) => r.headers['x-request-id'] === a.headers['x-request-id'])?.headers.cookie, 'a=1; b=2')
})

function sink (lines: string[]): Writable {
  return new Writable({ write (c: Buffer, _e, cb) { lines.push(c.toString()); cb() } })
}

t.test('serve(): HTTPS on the public port, plain HTTP on the admin port; unreadable files refuse to start', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const yaml = (certFile: string) => `server: { host: 127.0.0.1, port: 0, tls: { certFile: ${certFile}, keyFile: ${leaf.keyFile} } }\nadmin: { host: 127.0.0.1, port: 0 }\nshutdown: { delay: 0s, timeout: 2s }\n`
  const logs: string[] = []
  const r = await serve(snapshot(yaml(leaf.certFile), up.url), { version: '1.0.0', destination: sink(logs) })
  t.match(r.publicUrl, /^https:/)
  t.match(r.adminUrl, /^http:/)
  t.equal((await fetch(`${r.adminUrl}/livez`)).status, 200)
  t.match(await (await fetch(`${r.adminUrl}/metrics`)).text(), new RegExp(`pai_sidecar_tls_certificate_expiry_timestamp_seconds\\{serial="${leaf.serial}"\\} \\d+`))
  t.same(await handshake(r.publicUrl, { ALPNProtocols: ['h2'] }), { version: 'TLSv1.3', alpn: 'h2' })
  t.match(logs.join(''), new RegExp(`"tls":\\{"serial":"${leaf.serial}"`))
  r.shutdown('test')
  t.equal(await r.done, 0)
  await t.rejects(serve(snapshot(yaml('/nonexistent/tls.crt'), up.url), { version: '1.0.0', destination: sink([]) }), /server\.tls\.certFile: "\/nonexistent\/tls\.crt" cannot be read \(ENOENT\)/)
})

t.test('the command line refuses to serve with files that cannot be read, and says which', async (t) => {
  const dir = t.testdir({ 'tls.yaml': `server: { host: 127.0.0.1, port: 0, tls: { certFile: /nonexistent/tls.crt, keyFile: ${leaf.keyFile} } }\nadmin: { host: 127.0.0.1, port: 0 }\nlog: { level: silent }\n` })
  const err: string[] = []
  const code = await run(['--config', join(dir, 'tls.yaml')], {}, { out: () => undefined, err: (s: string) => { err.push(s) } })
  t.equal(code, 2)
  t.match(err.join(''), /configuration invalid \(1 problem\)/)
  t.match(err.join(''), /server\.tls\.certFile: "\/nonexistent\/tls\.crt" cannot be read \(ENOENT\)/)
})

t.test('the command line serves HTTPS with files it can read', async (t) => {
  const dir = t.testdir({ 'tls.yaml': `server: { host: 127.0.0.1, port: 0, tls: { certFile: ${leaf.certFile}, keyFile: ${leaf.keyFile}, minVersion: TLSv1.3 } }\nadmin: { host: 127.0.0.1, port: 0 }\nshutdown: { delay: 0s, timeout: 2s }\nlog: { level: silent }\n` })
  let started: Running | undefined
  const code = run(['--config', join(dir, 'tls.yaml')], {}, { out: () => undefined, err: () => undefined, started: (r: Running) => { started = r } })
  while (started === undefined) await new Promise((resolve) => setTimeout(resolve, 10))
  t.match(started.publicUrl, /^https:/)
  t.same(await handshake(started.publicUrl, { ALPNProtocols: ['h2'] }), { version: 'TLSv1.3', alpn: 'h2' })
  started.shutdown('test')
  t.equal(await code, 0)
})
