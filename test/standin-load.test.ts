// `--standin` loads the development stand-in from standin/ on demand (sidecar/standin/server.ts):
// it starts from a checkout, and where the stand-in is absent (a built sidecar, the image) the error
// says so. The stand-in's files carry the banner by which the build and image checks find them.
import t from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadStandin, STANDIN_MODULE, STANDIN_NOTE, startStandin, type StartStandin } from '../sidecar/standin/server.ts'
import * as real from './standin/server.ts'
import { STANDIN_BANNER, standinFiles } from './fixtures/standin-files.ts'

const ROOT = join(import.meta.dirname, '..')

// Compile time: the real start function is what the sidecar declares it needs.
const realStart: StartStandin = real.startStandin

t.test('the loader names the stand-in in test/standin/ and uses its words', async (t) => {
  t.equal(STANDIN_MODULE.pathname, join(ROOT, 'test/standin/server.ts'))
  t.equal(STANDIN_NOTE, real.STANDIN_NOTE)
  t.equal(await loadStandin(), realStart, 'from a checkout it loads the real module')
})

t.test('startStandin starts the real stand-in', async (t) => {
  const standin = await startStandin()
  t.teardown(standin.close)
  const res = await fetch(`${standin.url}/healthz`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-pai-standin'), 'true')
})

t.test('without the stand-in beside it, loading fails with a message that says why', async (t) => {
  const absent = new URL('file:///nonexistent/standin/server.ts')
  await t.rejects(loadStandin(absent), { message: /^--standin: the development stand-in is not part of this build \(no \/nonexistent\/standin\/server\.ts\); it runs from a checkout/ })
})

t.test('every file of the stand-in carries the banner that the build and image checks look for', async (t) => {
  const files = readdirSync(join(ROOT, 'test/standin')).filter((f) => f.endsWith('.ts')).sort()
  t.ok(files.length >= 3, files.join(' '))
  t.same(standinFiles(join(ROOT, 'test/standin')), files, `each starts with ${STANDIN_BANNER}`)
})
