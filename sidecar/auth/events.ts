// What authentication tells the operator: every request to the identity provider and every change of
// the key file, as metrics and log lines (docs/METRICS.md). Never a token, a key or a claim.
import type { Metrics } from '../metrics.ts'
import type { AuthEvents } from './authenticate.ts'

interface Log { info: (o: object, msg: string) => void; warn: (o: object, msg: string) => void }

export function authEvents (m: Metrics, log: Log): AuthEvents {
  return {
    fetched: (kind, ok, detail) => {
      m.authProviderFetches.inc({ kind, result: ok ? 'success' : 'failure' })
      if (ok) log.info({ kind, detail }, 'fetched from the identity provider')
      else log.warn({ kind, detail }, 'the identity provider could not be reached or answered unusably: cached keys, if any, keep verifying')
    },
    reloaded: (count) => {
      m.authKeyFileReloads.inc({ result: 'success' })
      log.info({ keys: count }, 'API key file reloaded')
    },
    rejected: (errors) => {
      m.authKeyFileReloads.inc({ result: 'failure' })
      log.warn({ errors }, 'API key file refused: the last good keys stay in force')
    }
  }
}
