// The demo (`npm run demo`, examples/demo/): what a newcomer sees in Chromium — the allowed origin's
// redacted text, and the second origin's failure with the sidecar's reason — and the command itself.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEFAULT_POLICY, parseDemoArgs, startDemo, type Demo } from '../examples/demo/demo.ts'
import { browserSkip, launchBrowser } from './fixtures/browser.ts'

// A browser on a 2-core machine shared with the rest of the suite can need more than tap's 30 s.
t.setTimeout(120_000)

const quiet = (): Writable => new Writable({ write (_c, _e, cb) { cb() } })
const ports = { sidecarPort: 0, adminPort: 0, appPort: 0, otherPort: 0 }
const POLICY = readFileSync(DEFAULT_POLICY, 'utf8')

t.test('parseDemoArgs: defaults, every flag, bad input', async (t) => {
  t.same(parseDemoArgs([]), { policy: DEFAULT_POLICY, sidecarPort: undefined, adminPort: undefined, appPort: 5173, otherPort: 5174 })
  t.same(parseDemoArgs(['--app-port', '1', '--other-port', '2', '--sidecar-port', '3', '--admin-port', '0', '--policy', 'p.yaml']),
    { policy: 'p.yaml', sidecarPort: 3, adminPort: 0, appPort: 1, otherPort: 2 })
  t.throws(() => parseDemoArgs(['--app-port', '65536']), { message: '--app-port: "65536" is not a port number' })
  t.throws(() => parseDemoArgs(['--verbose']), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' })
})

t.test('startDemo refuses a missing or invalid policy, and a taken port, leaving nothing running', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'cors: { allowedOrigins: ["null"] }\n' })
  await t.rejects(startDemo({ ...ports, policy: join(dir, 'missing.yaml') }), /missing\.yaml/)
  await t.rejects(startDemo({ ...ports, policy: join(dir, 'bad.yaml') }), /bad\.yaml: configuration invalid\ncors\.allowedOrigins\[0\]/)
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { taken.close() })
  await t.rejects(startDemo({ ...ports, policy: DEFAULT_POLICY, appPort: (taken.address() as { port: number }).port }), { code: 'EADDRINUSE' })
})

t.test('the demo page in Chromium', { skip: browserSkip }, async (t) => {
  // A copy of the shipped policy, so the test can edit it as a person would.
  const dir = t.testdir({ 'policy.yaml': POLICY })
  const policy = join(dir, 'policy.yaml')
  const demo: Demo = await startDemo({ ...ports, policy, destination: quiet() })
  t.teardown(async () => { demo.shutdown('test'); await demo.done })
  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  t.match(demo.appUrl, /^http:\/\/localhost:\d+$/)
  t.match(demo.otherUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  await page.goto(demo.appUrl)
  const frame = page.frameLocator('#other')
  await frame.getByText('Waiting for the page').waitFor()
  const send = page.getByRole('button', { name: 'Redact from both origins' })

  t.test('one click: the allowed origin shows the redacted text, the other the failure and why', async (t) => {
    await send.click()
    await page.locator('#own[data-state=ok]').waitFor()
    t.match(await page.getByTestId('redacted').textContent(), 'Hi, I am [NAME_GIVEN_1]. Mail [EMAIL_ADDRESS_1] or call [PHONE_NUMBER_1]; my card is [CREDIT_CARD_1].')
    t.match(await page.locator('#own table').textContent(), /EMAIL_ADDRESS_1jane\.doe@example\.com/)
    t.match(await page.locator('#own').textContent(), /x-request-id \(an exposed response header\): [0-9a-f-]{36}/)
    await frame.locator('[data-state=failed]').waitFor()
    const refused = await frame.locator('#embedded-panel').textContent()
    t.match(refused, `From ${demo.otherUrl}`)
    t.match(refused, /fetch\(\) rejected: TypeError: Failed to fetch/)
    t.match(await frame.getByTestId('why').textContent(), 'origin_not_allowed: no entry of allowedOrigins matches this origin')
    t.match(refused, `Hint: to allow it, add "${demo.otherUrl}" to cors.allowedOrigins`)
  })

  t.test('the page\'s own /explain, and an unknown path', async (t) => {
    t.match(await page.evaluate(async () => await (await fetch('/explain')).json()), { verdict: 'allowed', failures: [], hints: [] })
    t.equal(await page.evaluate(async () => (await fetch('/nope')).status), 404)
  })

  t.test('an edit of the policy applies to the next click, for the sidecar and the explanation alike', async (t) => {
    writeFileSync(policy, 'cors: { allowedOrigins: ["null"] }\n')
    t.match(await page.evaluate(async () => await (await fetch('/explain')).json()), { verdict: 'invalid_policy', hints: [/null/] })
    writeFileSync(policy, POLICY.replace('    - http://localhost:*\n', `    - http://localhost:*\n    - ${demo.otherUrl}\n`))
    const admin = demo.adminUrl.replace('localhost', '127.0.0.1')
    const generation = async (): Promise<number> => (await (await fetch(`${admin}/readyz`)).json() as { checks: { config: { generation: number } } }).checks.config.generation
    while (await generation() < 2) await sleep(20)
    await send.click()
    await frame.locator('[data-state=ok]').waitFor()
    t.match(await frame.getByTestId('redacted').textContent(), '[EMAIL_ADDRESS_1]')
  })
})

t.test('npm run demo: prints where to look, serves the page, stops on Ctrl-C', async (t) => {
  const root = join(import.meta.dirname, '..')
  const start = (args: string[]) => {
    const child = spawn(process.execPath, ['examples/demo/main.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    // Listened for at once: with three started together, one may exit while the test awaits another.
    const exited = once(child, 'exit')
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c })
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c })
    return { child, exited, stdout: () => stdout, stderr: () => stderr }
  }

  // All three at once: starting Node is most of the time this takes.
  const bad = start(['--app-port', 'x'])
  const broken = start(['--policy', 'missing.yaml'])
  const ok = start(['--app-port', '0', '--other-port', '0', '--sidecar-port', '0', '--admin-port', '0'])
  t.equal((await bad.exited)[0], 64)
  t.match(bad.stderr(), /--app-port: "x" is not a port number\n\nUsage: npm run demo/)
  t.equal((await broken.exited)[0], 1)
  t.match(broken.stderr(), /^demo: .*missing\.yaml/)

  while (!ok.stdout().includes('Press Ctrl-C')) {
    if (ok.child.exitCode !== null) throw new Error(ok.stderr())
    await sleep(20)
  }
  t.match(ok.stdout(), /development stand-in, NOT Private AI/)
  t.match(ok.stdout(), /policy {6}examples\/demo\/policy\.yaml \(edits apply live\)/)
  const app = /open {8}http:\/\/localhost:(\d+)/.exec(ok.stdout())?.[1]
  const res = await fetch(`http://127.0.0.1:${app as string}/`)
  t.equal(res.status, 200)
  t.match(await res.text(), '<title>pai-cors-sidecar demo</title>')
  ok.child.kill('SIGINT')
  t.same(await ok.exited, [0, null], 'Ctrl-C: exit 0')
})
