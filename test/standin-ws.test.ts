// The stand-in's `/ws`: one JSON message in, the answer POST /process/text would give out, so the
// demo and manual tests can drive the sidecar's WebSocket passthrough end to end.
import t from 'tap'
import { startStandin } from './standin/server.ts'
import { startSidecar } from './fixtures/sidecar.ts'
import { closedWith, nextMessage, opened, openWs } from './fixtures/ws.ts'

const BODY = { text: ['Mail jane.doe@example.com or call +1 416-555-0199'] }

t.test('each message gets the JSON that POST /process/text answers, directly and through the sidecar', async (t) => {
  const lines: { obj: Record<string, unknown>; msg: string }[] = []
  const standin = await startStandin({ port: 0, logger: { info: (obj, msg) => { lines.push({ obj, msg }) } } })
  t.teardown(standin.close)
  const rest = await (await fetch(`${standin.url}/process/text`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(BODY) })).json()

  const direct = await opened(openWs(standin.url))
  direct.send(JSON.stringify(BODY))
  const answer = await nextMessage(direct)
  t.equal(answer.binary, false)
  t.same(JSON.parse(answer.data.toString()), rest)
  t.match(JSON.stringify(rest), /\[EMAIL_ADDRESS_1\]/)
  direct.send('{"text": 42}')
  t.same(JSON.parse((await nextMessage(direct)).data.toString()), { detail: [{ type: 'list_type', loc: ['body', 'text'], msg: 'Input should be a valid list' }] })
  direct.send('not json')
  t.match(JSON.parse((await nextMessage(direct)).data.toString()), { detail: [{ type: 'json_invalid' }] })
  const closing = closedWith(direct)
  direct.close(1000)
  await closing
  t.match(lines.find((l) => l.msg === 'standin websocket'), { obj: { handler: '/ws', messages: 3, code: 1000 } })

  const sc = await startSidecar('cors: { allowedOrigins: [http://localhost:5173] }\nwebsocket: { enabled: true }\n', standin.url)
  t.teardown(sc.close)
  const through = await opened(openWs(sc.url, { origin: 'http://localhost:5173' }))
  through.send(JSON.stringify(BODY))
  t.same(JSON.parse((await nextMessage(through)).data.toString()), rest)
  through.close()
})

t.test('other upgrade paths get 404; stopping the stand-in ends open sockets', async (t) => {
  const standin = await startStandin({ port: 0 })
  t.match(await openWs(standin.url, { path: '/process/text' }), { ok: false, status: 404 })
  const ws = await opened(openWs(standin.url))
  const closed = closedWith(ws)
  await standin.close()
  t.equal((await closed).code, 1006)
})
