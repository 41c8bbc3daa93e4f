// Rotating the public port's certificate without a restart (docs/ARCHITECTURE.md, "TLS"): a
// kubernetes.io/tls Secret volume updated the kubelet's way (a new timestamped directory, `..data`
// swapped) under steady load. No request fails, new connections get the new serial within seconds,
// open connections go on; a pair that does not parse or does not match keeps the last good one, and
// is logged, counted and reported.
import t from 'tap'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { ReloadEvents } from '../sidecar/kube/reload-events.ts'
import type { EventRecorder } from '../sidecar/kube/events.ts'
import { serve } from '../sidecar/server.ts'
import { readPair, type TlsPair } from '../sidecar/tls.ts'
import { watchPair } from '../sidecar/tls-rotation.ts'
import { makeCa, type Leaf } from './fixtures/certs.ts'
import { h2connect, h2request } from './fixtures/h2.ts'
import { snapshot } from './fixtures/sidecar.ts'
import { startUpstream } from './fixtures/upstream.ts'

const ca = await makeCa()
t.teardown(ca.remove)
const first = await ca.leaf('first')
const second = await ca.leaf('second')
const third = await ca.leaf('third')

/** A kubernetes.io/tls Secret volume as the kubelet lays it out (tls.crt, tls.key through `..data`). */
class SecretVolume {
  readonly dir = mkdtempSync(join(tmpdir(), 'pai-secret-'))
  #version = 0
  #current: string
  constructor (cert: Buffer, key: Buffer) {
    this.#current = this.#write(cert, key)
    symlinkSync(this.#current, join(this.dir, '..data'))
    for (const f of ['tls.crt', 'tls.key']) symlinkSync(join('..data', f), join(this.dir, f))
  }

  get certFile (): string { return join(this.dir, 'tls.crt') }
  get keyFile (): string { return join(this.dir, 'tls.key') }

  #write (cert: Buffer, key: Buffer): string {
    const name = `..2026_12_04_19_00_00.${++this.#version}`
    mkdirSync(join(this.dir, name))
    writeFileSync(join(this.dir, name, 'tls.crt'), cert)
    writeFileSync(join(this.dir, name, 'tls.key'), key)
    return name
  }

  /** kubelet's AtomicWriter: new dir, `..data_tmp` → new dir, rename over `..data`, remove the old dir. */
  update (cert: Buffer, key: Buffer): void {
    const next = this.#write(cert, key)
    symlinkSync(next, join(this.dir, '..data_tmp'))
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'))
    rmSync(join(this.dir, this.#current), { recursive: true })
    this.#current = next
  }

  remove (): void { rmSync(this.dir, { recursive: true, force: true }) }
}

/** The serial a new TLS connection is shown. */
async function servedSerial (url: string): Promise<string> {
  const u = new URL(url)
  const socket = tlsConnect({ host: u.hostname, port: Number(u.port), ca: ca.ca, servername: 'localhost' })
  await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject) })
  const serial = socket.getPeerX509Certificate()?.serialNumber as string
  socket.destroy()
  return serial
}

/** One request over HTTP/1.1 on a fresh TLS connection; its status. */
async function freshRequest (url: string): Promise<number | undefined> {
  const u = new URL(url)
  return await new Promise((resolve, reject) => {
    const req = httpsRequest({ host: u.hostname, port: u.port, path: '/process/text', method: 'POST', ca: ca.ca, servername: 'localhost', agent: false }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode) })
    })
    req.on('error', reject)
    req.end('{}')
  })
}

async function until (what: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await what()) return true
    await sleep(25)
  }
  return false
}

const sink = (lines: string[]): Writable => new Writable({ write (c: Buffer, _e, cb) { lines.push(c.toString()); cb() } })

t.test('kubelet-style rotation under load: no request fails, new connections get the new serial, open ones go on; a bad pair keeps the last good one', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const volume = new SecretVolume(first.cert, first.key)
  t.teardown(() => { volume.remove() })
  const reported: string[] = []
  const lines: string[] = []
  const r = await serve(snapshot(`server: { host: 127.0.0.1, port: 0, tls: { certFile: ${volume.certFile}, keyFile: ${volume.keyFile} } }
admin: { host: 127.0.0.1, port: 0 }
routes: [{ path: /process/text, methods: [POST] }]
shutdown: { delay: 0s, timeout: 2s }
`, up.url), {
    version: '1.0.0',
    destination: sink(lines),
    tlsReporter: { certificateRotated: (p) => { reported.push(`rotated ${p.serial}`) }, certificateRejected: (e) => { reported.push(`rejected ${e.join('; ')}`) } }
  })
  t.teardown(async () => { r.shutdown('test'); await r.done })
  t.equal(await servedSerial(r.publicUrl), first.serial)
  // An HTTP/2 connection opened before the rotation, used after it.
  const open = await h2connect(r.publicUrl, ca.ca)
  t.teardown(() => { open.destroy() })

  // Steady load: four clients, each request on a fresh connection, until the new serial is seen.
  let seen = false
  const statuses: (number | string | undefined)[] = []
  const worker = async (): Promise<void> => {
    while (!seen) statuses.push(await freshRequest(r.publicUrl).catch((err: Error) => err.message))
  }
  const load = Promise.all([worker(), worker(), worker(), worker()])
  await until(async () => statuses.length >= 20)
  volume.update(second.cert, second.key)
  seen = await until(async () => (await servedSerial(r.publicUrl)) === second.serial)
  await load
  t.ok(seen, 'a new connection presents the new serial within seconds')
  t.ok(statuses.length >= 20, `${statuses.length} requests during the rotation`)
  t.same(statuses.filter((s) => s !== 200), [], 'every one of them succeeded')
  t.equal((await h2request(open, { ':method': 'POST', ':path': '/process/text' }, '{}')).status, 200, 'the connection opened before goes on')
  t.same(reported, [`rotated ${second.serial}`])
  const metrics = async (): Promise<string> => await (await fetch(`${r.adminUrl}/metrics`)).text()
  t.match(await metrics(), new RegExp(`pai_sidecar_tls_certificate_expiry_timestamp_seconds\\{serial="${second.serial}"\\} \\d+`))
  t.notMatch(await metrics(), new RegExp(`serial="${first.serial}"`), 'one series: the certificate served')
  t.match(await metrics(), /pai_sidecar_tls_reloads_total\{result="success"\} 1/)
  t.match(lines.join(''), new RegExp(`"serial":"${second.serial}".*certificate rotated`))

  // A pair that does not match: the last good one serves on.
  volume.update(third.cert, first.key)
  t.ok(await until(async () => /pai_sidecar_tls_reloads_total\{result="failure"\} 1/.test(await metrics())), 'the refusal is counted')
  t.equal(await servedSerial(r.publicUrl), second.serial, 'the last good certificate still serves')
  t.match(reported[1], /^rejected server\.tls: the key in ".*tls\.key" does not match the certificate in ".*tls\.crt"$/)
  t.match(lines.join(''), /certificate files changed but were refused/)
  // A file that is not PEM at all: the same.
  volume.update(Buffer.from('not a certificate'), third.key)
  t.ok(await until(async () => /pai_sidecar_tls_reloads_total\{result="failure"\} 2/.test(await metrics())))
  t.equal(await freshRequest(r.publicUrl), 200)
  t.equal(await servedSerial(r.publicUrl), second.serial)
  // And a good pair afterwards is taken.
  volume.update(third.cert, third.key)
  t.ok(await until(async () => (await servedSerial(r.publicUrl)) === third.serial))
  t.equal(reported.length, 4)
})

t.test('watchPair: a file missing for a moment changes nothing; the same bad contents are reported once; the poll catches what the watch missed', async (t) => {
  const dir = t.testdir({})
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), minVersion: 'TLSv1.2' as const }
  const write = (leaf: Leaf): void => { writeFileSync(files.certFile, leaf.cert); writeFileSync(files.keyFile, leaf.key) }
  write(first)
  const initial = await readPair(files)
  if (!initial.ok) throw new Error('unreadable')
  const applied: string[] = []
  const rejected: string[][] = []
  // A long debounce: within this test only the poll (every 30 ms) reads the files.
  const w = watchPair({ files, initial: initial.pair, apply: (p: TlsPair) => { applied.push(p.serial) }, rejected: (e) => { rejected.push(e) }, debounceMs: 60_000, pollMs: 30 })
  t.teardown(() => { w.stop() })
  rmSync(files.keyFile)
  await sleep(120)
  t.same([applied, rejected], [[], []], 'a missing file is looked at again later')
  writeFileSync(files.keyFile, second.key)
  t.ok(await until(async () => rejected.length === 1))
  await sleep(120)
  t.equal(rejected.length, 1, 'the same bad pair is reported once')
  write(second)
  t.ok(await until(async () => applied.length === 1))
  t.same(applied, [second.serial])
})

t.test('Kubernetes mode records rotations and refusals as Events on the pod', async (t) => {
  const events: string[] = []
  const recorder = { record: async (type: string, reason: string, note: string) => { events.push(`${type} ${reason} ${note}`) } } as unknown as EventRecorder
  const r = new ReloadEvents(recorder)
  const p = await readPair({ certFile: first.certFile, keyFile: first.keyFile, minVersion: 'TLSv1.2' })
  if (!p.ok) throw new Error('unreadable')
  r.certificateRotated(p.pair)
  r.certificateRejected(['a', 'b', 'c', 'd'])
  t.match(events[0], new RegExp(`^Normal CertificateRotated serving certificate ${first.serial}, valid until \\d{4}-`))
  t.equal(events[1], 'Warning CertificateRejected kept the last good certificate: a; b; c (+1 more)')
})
