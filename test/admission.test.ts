// The admission controller on its own: concurrency bound, FIFO order, bounded queue, timeouts,
// withdrawn waiters, and the metrics that describe all of it.
import t from 'tap'
import { Registry } from 'prom-client'
import { Admission, AdmissionRejected } from '../sidecar/admission.ts'
import { createMetrics, type Metrics } from '../sidecar/metrics.ts'
import { sample } from './fixtures/metrics.ts'

function setup (maxConcurrent: number, queueSize: number, queueTimeoutMs = 10_000): { a: Admission; m: Metrics } {
  const m = createMetrics(new Registry(), { version: 't', config: () => ({ hash: 'h', generation: 1 }) })
  return { a: new Admission({ maxConcurrent, queueSize, queueTimeoutMs, metrics: m }), m }
}

const value = (m: Metrics, name: keyof Metrics, labels: Record<string, string> = {}): Promise<number | undefined> => sample(m[name], labels)

const never = (): void => {}

t.test('up to maxConcurrent are admitted at once; the rest wait in FIFO order', async (t) => {
  const { a, m } = setup(2, 10)
  const r1 = await a.acquire(never)
  await a.acquire(never)
  t.equal(a.active, 2)
  const order: number[] = []
  const waiting = [3, 4, 5].map((n) => a.acquire(never).then((release) => { order.push(n); return release }))
  t.equal(a.queued, 3)
  t.equal(await value(m, 'queueDepth'), 3)
  t.equal(await value(m, 'queueCapacity'), 10)
  r1()
  r1() // releasing twice frees one slot only
  const r3 = await waiting[0] as () => void
  t.same(order, [3])
  t.equal(a.active, 2, 'the freed slot went straight to the oldest waiter')
  r3()
  const r4 = await waiting[1] as () => void
  t.same(order, [3, 4])
  t.equal(a.queued, 1)
  t.equal(await value(m, 'queueDepth'), 1)
  r4()
  await waiting[2]
  t.same(order, [3, 4, 5])
})

t.test('a full queue refuses at once; a wait past the timeout is refused', async (t) => {
  const { a, m } = setup(1, 1, 50)
  await a.acquire(never)
  const start = performance.now()
  const queued = a.acquire(never)
  await t.rejects(a.acquire(never), new AdmissionRejected('full'))
  await t.rejects(queued, new AdmissionRejected('timeout'))
  t.ok(performance.now() - start >= 45, 'waited about queue.timeout')
  t.equal(a.queued, 0)
  t.equal(await value(m, 'queueRejections', { reason: 'full' }), 1)
  t.equal(await value(m, 'queueRejections', { reason: 'timeout' }), 1)
})

t.test('a waiter whose client leaves is withdrawn at once and never admitted', async (t) => {
  const { a, m } = setup(1, 5)
  const release = await a.acquire(never)
  let withdraw = never
  const abandoned = a.acquire((w) => { withdraw = w })
  const next = a.acquire(never)
  withdraw()
  withdraw() // a second withdrawal is harmless
  await t.rejects(abandoned, new AdmissionRejected('abandoned'))
  t.equal(a.queued, 1)
  release()
  await next
  t.equal(await value(m, 'queueRejections', { reason: 'abandoned' }), 1)
})

t.test('with no queue, anything beyond maxConcurrent is refused; releasing with nobody waiting frees the slot', async (t) => {
  const { a, m } = setup(1, 0)
  const release = await a.acquire(never)
  await t.rejects(a.acquire(never), new AdmissionRejected('full'))
  release()
  t.equal(a.active, 0)
  await a.acquire(never)
  const waits = await value(m, 'queueWait', { le: '0.001' })
  t.equal(waits, 2, 'immediate admissions wait 0 s')
})
