import t from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { createStandin, DEFAULT_MAX_BODY_BYTES, formatUrl, startStandin, STANDIN_NOTE } from './standin/server.ts'
import type { StandinLogger, StandinOptions } from './standin/server.ts'

async function standin (t: { teardown(fn: () => unknown): void }, opts: StandinOptions = {}) {
  const s = await startStandin({ ...opts, port: 0 })
  t.teardown(s.close)
  return s
}

async function post (url: string, body: unknown, init: RequestInit = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  })
  return { status: res.status, headers: res.headers, json: (await res.json()) as any }
}

/** Raw request, for bodies fetch will not send (chunked, aborted). */
function raw (url: string, path: string, headers: http.OutgoingHttpHeaders, write: (req: http.ClientRequest) => void) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: 'POST', headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode as number, body }))
    })
    req.on('error', reject)
    write(req)
  })
}

t.test('GET routes', async (t) => {
  const { url } = await standin(t)

  const root = await fetch(`${url}/`)
  t.equal(root.status, 200)
  t.equal(root.headers.get('x-pai-standin'), 'true')
  t.equal(root.headers.get('content-type'), 'application/json')
  t.same(await root.json(), { app_version: '4.0.0-standin', standin: true, note: STANDIN_NOTE })

  const health = await fetch(`${url}/healthz?probe=1`)
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'ok' })

  const diag = await fetch(`${url}/diagnostics`)
  t.equal(diag.status, 200)
  t.match(await diag.json(), { standin: true, note: STANDIN_NOTE })
})

t.test('healthz can be flipped for readiness tests', async (t) => {
  const s = await standin(t, { healthy: false })
  t.equal((await fetch(`${s.url}/healthz`)).status, 503)
  s.setHealthy(true)
  t.equal((await fetch(`${s.url}/healthz`)).status, 200)
  s.server.setHealthy(false)
  const res = await fetch(`${s.url}/healthz`)
  t.equal(res.status, 503)
  t.equal(res.headers.get('x-pai-standin'), 'true')
})

t.test('metrics use the container names, status classes and route templates', async (t) => {
  const { url } = await standin(t)
  await fetch(`${url}/healthz`)
  await fetch(`${url}/healthz`)
  await post(`${url}/v3/process/text`, { text: ['x'] })
  await fetch(`${url}/no/such/thing`)
  const res = await fetch(`${url}/metrics`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  t.equal(res.headers.get('x-pai-standin'), 'true')
  const text = await res.text()
  t.match(text, '# TYPE http_requests_total counter\n')
  t.match(text, 'http_requests_total{method="GET",status="2xx",handler="/healthz"} 2.0\n')
  t.match(text, 'http_requests_total{method="POST",status="2xx",handler="/v3/process/text"} 1.0\n')
  t.match(text, 'http_requests_total{method="GET",status="4xx",handler="none"} 1.0\n')
  t.notMatch(text, 'no/such', 'unmatched paths are not echoed')
})

t.test('404 and 405, FastAPI style', async (t) => {
  const { url } = await standin(t)
  for (const [method, path, status, allow] of [
    ['GET', '/nope', 404, null],
    ['POST', '/v3/healthz', 404, null],
    ['GET', '/v3/', 404, null],
    ['GET', '/process/text', 405, 'POST'],
    ['OPTIONS', '/v3/ner/text', 405, 'POST'],
    ['POST', '/healthz', 405, 'GET'],
    ['DELETE', '/', 405, 'GET'],
  ] as const) {
    const res = await fetch(`${url}${path}`, { method })
    t.equal(res.status, status, `${method} ${path}`)
    t.equal(res.headers.get('allow'), allow)
    t.equal(res.headers.get('x-pai-standin'), 'true')
    t.same(await res.json(), { detail: status === 404 ? 'Not Found' : 'Method Not Allowed' })
  }
})

t.test('POST /process/text', async (t) => {
  const { url } = await standin(t)
  const res = await post(`${url}/process/text`, { text: ['Hi John, mail john@x.io', 'John again'], project_id: 'ignored' })
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-pai-standin'), 'true')
  t.same(
    res.json.map((i: any) => i.processed_text),
    ['Hi [NAME_GIVEN_1], mail [EMAIL_ADDRESS_1]', '[NAME_GIVEN_1] again']
  )
  t.match(res.json[0], { entities_present: true, characters_processed: 23, languages_detected: { en: 0.9 } })
  t.match(res.json[0].entities[1], {
    processed_text: 'EMAIL_ADDRESS_1',
    text: 'john@x.io',
    location: { stt_idx: 14, end_idx: 23, stt_idx_processed: 24, end_idx_processed: 41 },
    best_label: 'EMAIL_ADDRESS',
    labels: { EMAIL_ADDRESS: 0.96 },
  })

  const linked = await post(`${url}/v3/process/text`, { text: ['Mary', 'John', 'Mary'], link_batch: true })
  t.same(
    linked.json.map((i: any) => i.processed_text),
    ['[NAME_GIVEN_1]', '[NAME_GIVEN_2]', '[NAME_GIVEN_1]'],
    'link_batch numbers across the inputs'
  )
  const unlinked = await post(`${url}/process/text`, { text: ['Mary', 'John'], link_batch: false })
  t.same(
    unlinked.json.map((i: any) => i.processed_text),
    ['[NAME_GIVEN_1]', '[NAME_GIVEN_1]']
  )

  const options = await post(`${url}/process/text`, {
    text: ['John 10.0.0.1 john@x.io'],
    processed_text: { type: 'MASK', mask_character: '*' },
    entity_detection: { accuracy: 'high', entity_types: [{ type: 'DISABLE', value: ['EMAIL_ADDRESS'] }] },
  })
  t.equal(options.json[0].processed_text, '**** ******** john@x.io')
  const pattern = await post(`${url}/process/text`, { text: ['John'], processed_text: { type: 'MARKER', pattern: '[ENTITY_TYPE]' }, entity_detection: {} })
  t.equal(pattern.json[0].processed_text, '[NAME_GIVEN]')
  const empty = await post(`${url}/process/text`, { text: [] })
  t.same(empty.json, [])
})

t.test('POST /process/files/base64', async (t) => {
  const { url } = await standin(t)
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')
  const text = 'Call John at 555-123-4567.\n'
  for (const contentType of ['text/plain', 'Text/CSV; charset=utf-8']) {
    const res = await post(`${url}/v3/process/files/base64`, { file: { data: b64(text), content_type: contentType } })
    t.equal(res.status, 200, contentType)
    t.equal(res.json.processed_text, 'Call [NAME_GIVEN_1] at [PHONE_NUMBER_1].\n')
    t.equal(Buffer.from(res.json.processed_file, 'base64').toString('utf8'), res.json.processed_text)
    t.equal(res.json.entities.length, 2)
  }
  const wrapped = await post(`${url}/process/files/base64`, {
    file: { data: b64(text).replace(/(.{8})/g, '$1\n'), content_type: 'text/markdown' },
    processed_text: { type: 'MASK' },
  })
  t.equal(wrapped.json.processed_text, 'Call #### at ############.\n', 'MIME-wrapped base64 is accepted')

  const image = await post(`${url}/process/files/base64`, { file: { data: 'AAAA', content_type: 'image/png' } })
  t.equal(image.status, 422)
  t.match(image.json.detail, /"image\/png" is not supported by the stand-in/)

  const bad = await post(`${url}/process/files/base64`, { file: { data: 'not base64!', content_type: 'text/plain' } })
  t.equal(bad.status, 422)
  t.same(bad.json.detail, [{ type: 'value_error', loc: ['body', 'file', 'data'], msg: 'Invalid base64 data' }])
})

t.test('POST /process/files/uri answers without reading anything', async (t) => {
  const { url } = await standin(t)
  for (const path of ['/process/files/uri', '/v3/process/files/uri']) {
    const res = await post(`${url}${path}`, { uri: '/etc/passwd' })
    t.equal(res.status, 200)
    t.match(res.json, { standin: true, result_uri: null })
    t.notMatch(JSON.stringify(res.json), 'root:')
  }
})

t.test('POST /process/text/reidentify', async (t) => {
  const { url } = await standin(t)
  const res = await post(`${url}/process/text/reidentify`, {
    processed_text: ['Dear [NAME_1], about [NAME_2].', '[EMAIL_ADDRESS_1]'],
    entities: [
      { processed_text: 'NAME_1', text: 'John' },
      { processed_text: 'EMAIL_ADDRESS_1', text: 'john@x.io' },
    ],
    model: 'gpt-4o',
  })
  t.equal(res.status, 200)
  t.same(res.json, ['Dear John, about [NAME_2].', 'john@x.io'])
  t.same((await post(`${url}/v3/process/text/reidentify`, { processed_text: [], entities: [] })).json, [])
})

t.test('POST /ner/text and /analyze/text return entities only', async (t) => {
  const { url } = await standin(t)
  for (const path of ['/ner/text', '/analyze/text', '/v3/ner/text', '/v3/analyze/text']) {
    const res = await post(`${url}${path}`, { text: ['Mary: mary@x.io', 'none'], link_batch: false })
    t.equal(res.status, 200, path)
    t.same(res.json, [
      {
        entities: [
          { text: 'Mary', location: { stt_idx: 0, end_idx: 4 }, label: 'NAME_GIVEN', likelihood: 0.85 },
          { text: 'mary@x.io', location: { stt_idx: 6, end_idx: 15 }, label: 'EMAIL_ADDRESS', likelihood: 0.96 },
        ],
      },
      { entities: [] },
    ])
  }
})

t.test('POST /bleep is refused', async (t) => {
  const { url } = await standin(t)
  for (const path of ['/bleep', '/v3/bleep']) {
    const res = await post(`${url}${path}`, { file: { data: '', content_type: 'audio/mp3' }, timestamps: [] })
    t.equal(res.status, 422)
    t.same(res.json, { detail: 'audio not supported by the stand-in' })
  }
})

t.test('422 for malformed JSON and wrong shapes', async (t) => {
  const { url } = await standin(t)
  const cases: Array<[string, unknown, string, Array<string | number>]> = [
    ['/process/text', '{"text": ["John Smith"', 'json_invalid', ['body', 0]],
    ['/process/text', '', 'missing', ['body']],
    ['/process/text', [], 'dict_type', ['body']],
    ['/process/text', {}, 'missing', ['body', 'text']],
    ['/process/text', { text: 'John' }, 'list_type', ['body', 'text']],
    ['/process/text', { text: ['a', 2] }, 'string_type', ['body', 'text', 1]],
    ['/process/text', { text: [], link_batch: 'yes' }, 'bool_type', ['body', 'link_batch']],
    ['/process/text', { text: [], processed_text: 'MASK' }, 'dict_type', ['body', 'processed_text']],
    ['/process/text', { text: [], processed_text: { type: 'SYNTHETIC' } }, 'literal_error', ['body', 'processed_text', 'type']],
    ['/process/text', { text: [], processed_text: { pattern: '[X]' } }, 'literal_error', ['body', 'processed_text', 'pattern']],
    ['/process/text', { text: [], processed_text: { mask_character: '##' } }, 'string_length', ['body', 'processed_text', 'mask_character']],
    ['/process/text', { text: [], processed_text: { mask_character: 1 } }, 'string_type', ['body', 'processed_text', 'mask_character']],
    ['/process/text', { text: [], entity_detection: { entity_types: {} } }, 'list_type', ['body', 'entity_detection', 'entity_types']],
    ['/process/text', { text: [], entity_detection: { entity_types: [{ type: 'ENABLE' }] } }, 'missing', ['body', 'entity_detection', 'entity_types', 0, 'value']],
    ['/ner/text', { text: [], entity_detection: { entity_types: [{ type: 'ON', value: [] }] } }, 'literal_error', ['body', 'entity_detection', 'entity_types', 0, 'type']],
    ['/process/files/base64', { file: 'AAAA' }, 'dict_type', ['body', 'file']],
    ['/process/files/base64', { file: { data: 'AAAA' } }, 'missing', ['body', 'file', 'content_type']],
    ['/process/files/uri', {}, 'missing', ['body', 'uri']],
    ['/process/text/reidentify', { processed_text: [], entities: [{ processed_text: 'NAME_1' }] }, 'missing', ['body', 'entities', 0, 'text']],
    ['/bleep', 'not json', 'json_invalid', ['body', 0]],
  ]
  for (const [path, body, type, loc] of cases) {
    const res = await post(`${url}${path}`, typeof body === 'string' ? body : JSON.stringify(body))
    t.equal(res.status, 422, `${path} ${JSON.stringify(body)}`)
    t.equal(res.json.detail.length, 1)
    t.match(res.json.detail[0], { type, loc, msg: String })
    t.notMatch(JSON.stringify(res.json), 'John', 'the input is not echoed')
  }
  const synthetic = await post(`${url}/process/text`, { text: [], processed_text: { type: 'SYNTHETIC' } })
  t.equal(synthetic.json.detail[0].msg, "Input should be 'MARKER' or 'MASK' (the stand-in has no SYNTHETIC mode)")
})

t.test('413 above the body cap', async (t) => {
  t.equal(DEFAULT_MAX_BODY_BYTES, 64 * 1024 * 1024)
  const { url } = await standin(t, { maxBodyBytes: 1024 })
  const body = JSON.stringify({ text: ['x'.repeat(2000)] })

  const declared = await raw(url, '/process/text', { 'content-length': Buffer.byteLength(body) }, (req) => req.end(body))
  t.equal(declared.status, 413, 'by Content-Length')
  t.same(JSON.parse(declared.body), { detail: 'Request body larger than 1024 bytes' })

  const chunked = await raw(url, '/process/text', { 'transfer-encoding': 'chunked' }, (req) => {
    req.write(body.slice(0, 1000))
    setTimeout(() => req.end(body.slice(1000)), 20)
  })
  t.equal(chunked.status, 413, 'while streaming')

  const fits = await post(`${url}/process/text`, { text: ['x'.repeat(900)] })
  t.equal(fits.status, 200)
})

t.test('delayMs holds POST answers, not GET ones', async (t) => {
  const { url } = await standin(t, { delayMs: 150 })
  let started = performance.now()
  await fetch(`${url}/healthz`)
  t.ok(performance.now() - started < 140, 'GET is not delayed')
  started = performance.now()
  t.equal((await post(`${url}/process/text`, { text: ['x'] })).status, 200)
  t.ok(performance.now() - started >= 140, 'POST is delayed')
})

t.test('logger sees method, route and status, never bodies or raw paths', async (t) => {
  const lines: Array<[Record<string, unknown>, string]> = []
  const logger: StandinLogger = { info: (obj, msg) => lines.push([obj, msg]) }
  const { url } = await standin(t, { logger })
  await post(`${url}/process/text`, { text: ['secret John'] })
  await fetch(`${url}/john@x.io?q=John`)
  t.equal(lines.length, 2)
  t.match(lines[0], [{ method: 'POST', handler: '/process/text', status: 200, ms: Number }, 'standin request'])
  t.match(lines[1], [{ method: 'GET', handler: 'none', status: 404 }, 'standin request'])
  t.notMatch(JSON.stringify(lines), /John|john/)
})

t.test('an aborted upload does not disturb the server', async (t) => {
  const { url } = await standin(t)
  const req = http.request(`${url}/process/text`, { method: 'POST', headers: { 'content-length': 100 } })
  const closed = new Promise((resolve) => req.on('error', resolve).on('close', resolve))
  req.write('{"text": [')
  await sleep(50)
  req.destroy()
  await closed
  await sleep(50)
  t.equal((await fetch(`${url}/healthz`)).status, 200)
})

t.test('startStandin / createStandin', async (t) => {
  const first = await standin(t)
  t.match(first.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const port = Number(new URL(first.url).port)
  await t.rejects(startStandin({ port }), { code: 'EADDRINUSE' })

  t.equal(formatUrl('::1', 8080), 'http://[::1]:8080')
  t.equal(formatUrl('localhost', 80), 'http://localhost:80')

  const server = createStandin()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const address = server.address() as { port: number }
  const res = await fetch(`http://127.0.0.1:${address.port}/healthz`, { headers: { connection: 'close' } })
  t.equal(res.status, 200)
})
