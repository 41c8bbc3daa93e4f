// Rotating the public port's certificate without a restart (docs/ARCHITECTURE.md, "TLS"): when the
// files change, the new pair serves every new connection (setSecureContext) and open connections go
// on with the one they began with. A pair that does not parse or does not match keeps the last good
// one; it is logged, counted and (Kubernetes mode) recorded as an Event.
//
// A kubernetes.io/tls Secret mounted as a directory changes the way a ConfigMap volume does: the
// kubelet writes a new timestamped directory and swaps the `..data` symlink, so both files change
// at once and the files themselves are never written. As for the configuration file, the
// *directories* are watched (watch-dirs.ts) and the files are re-read by path.
import { dirname } from 'node:path'
import type { Server as TlsServer } from 'node:tls'
import type { Metrics } from './metrics.ts'
import { checkPair, pairDigest, readBoth, type TlsFiles, type TlsPair } from './tls.ts'
import { watchDirs } from './watch-dirs.ts'

/** Told about every change of the files (Kubernetes mode records an Event). Must not throw. */
export interface TlsReporter {
  certificateRotated: (pair: TlsPair) => void
  certificateRejected: (errors: string[]) => void
}

export interface WatchPairOptions {
  files: TlsFiles
  /** The pair the server started with. */
  initial: TlsPair
  /** A new good pair. */
  apply: (pair: TlsPair) => void
  /** A changed pair that was refused: the last good one stays. */
  rejected: (errors: string[]) => void
  debounceMs?: number | undefined
  pollMs?: number | undefined
}

export interface PairWatch { stop: () => void }

/** Follows the two files; applies each new good pair, and reports each new bad one once. */
export function watchPair (opts: WatchPairOptions): PairWatch {
  let current = opts.initial.digest
  // The digest of the last bad contents, so the poll does not report the same problem every time.
  let lastBad: string | undefined
  const checkOnce = async (): Promise<void> => {
    const both = await readBoth(opts.files)
    // A file missing for a moment (mid-swap, by a writer other than the kubelet) is looked at again
    // on the next event or poll; nothing changes meanwhile.
    if (Array.isArray(both)) return
    const seen = pairDigest(both.cert, both.key)
    if (seen === current || seen === lastBad) return
    const checked = checkPair(opts.files, both.cert, both.key)
    if (!checked.ok) {
      lastBad = seen
      opts.rejected(checked.errors)
      return
    }
    current = seen
    opts.apply(checked.pair)
  }
  // A watch that fails (its directory removed) leaves the poll, which reads the files by path.
  return watchDirs([dirname(opts.files.certFile), dirname(opts.files.keyFile)], checkOnce, {
    debounceMs: opts.debounceMs,
    pollMs: opts.pollMs
  })
}

export interface RotationDeps {
  server: TlsServer
  files: TlsFiles
  initial: TlsPair
  metrics: Metrics
  log: { info: (o: object, msg: string) => void, warn: (o: object, msg: string) => void }
  reporter?: TlsReporter | undefined
  /** Tests: a quicker safety-net poll. */
  pollMs?: number | undefined
}

/** One series: the certificate being served. */
function served (m: Metrics, pair: TlsPair): void {
  m.tlsCertificateExpiry.reset()
  m.tlsCertificateExpiry.set({ serial: pair.serial }, pair.validTo.getTime() / 1000)
}

/** The server's certificate follows its files; the expiry metric follows the certificate served. */
export function startRotation (deps: RotationDeps): PairWatch {
  const m = deps.metrics
  served(m, deps.initial)
  for (const result of ['success', 'failure']) m.tlsReloads.inc({ result }, 0)
  return watchPair({
    files: deps.files,
    initial: deps.initial,
    pollMs: deps.pollMs,
    apply: (pair) => {
      deps.server.setSecureContext(pair.options)
      served(m, pair)
      m.tlsReloads.inc({ result: 'success' })
      deps.log.info({ serial: pair.serial, notAfter: pair.validTo.toISOString() }, 'certificate rotated: new connections get the new one')
      deps.reporter?.certificateRotated(pair)
    },
    rejected: (errors) => {
      m.tlsReloads.inc({ result: 'failure' })
      deps.log.warn({ errors }, 'certificate files changed but were refused: the last good certificate still serves')
      deps.reporter?.certificateRejected(errors)
    }
  })
}
