// The fixed-window limiter itself (sidecar/http/rate-limit.ts), on a clock the test sets.
import t from 'tap'
import { MAX_CLIENTS, RateLimiter } from '../sidecar/http/rate-limit.ts'

t.test('max per key per window, Retry-After until the window ends, a fresh budget in the next one', async (t) => {
  const l = new RateLimiter(0)
  const minute = 60_000
  const t0 = 10 * minute + 15_000
  t.equal(l.take('a', 2, minute, t0), undefined)
  t.equal(l.take('a', 2, minute, t0 + 1), undefined)
  t.equal(l.take('a', 2, minute, t0 + 2), 45, '45 s left in this window')
  t.equal(l.take('b', 2, minute, t0 + 3), undefined, 'another key has its own budget')
  t.equal(l.take('a', 2, minute, 11 * minute - 100), 1, 'at least 1 s')
  t.equal(l.take('a', 2, minute, 11 * minute), undefined, 'the next window starts afresh')
})

t.test('the number of clients counted per window is bounded', async (t) => {
  const l = new RateLimiter(0)
  for (let i = 0; i < MAX_CLIENTS; i++) l.take(`k${i}`, 1, 1000, 0)
  t.equal(l.take('k0', 1, 1000, 1), 1, 'a counted client is limited')
  t.equal(l.take('late', 1, 1000, 2), undefined)
  t.equal(l.take('late', 1, 1000, 3), undefined, 'past the bound a new client goes uncounted rather than growing the map')
})

t.test('windows start when the limiter does, not on the wall clock\'s minute', async (t) => {
  const minute = 60_000
  const l = new RateLimiter(10 * minute + 59_000)
  t.equal(l.take('a', 1, minute, 10 * minute + 59_500), undefined)
  t.equal(l.take('a', 1, minute, 11 * minute + 500), 59, 'the wall clock\'s minute passed, the window did not')
  t.equal(l.take('a', 1, minute, 11 * minute + 59_000), undefined, 'a minute after the start, a fresh budget')
})
