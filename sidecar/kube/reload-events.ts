// Reload outcomes as Kubernetes Events on the pod: `kubectl describe pod` shows which configuration was
// applied, what needs a restart, and why a text was refused.
import type { ReloadOutcome, ReloadReporter } from '../config/reload.ts'
import type { TlsPair } from '../tls.ts'
import type { TlsReporter } from '../tls-rotation.ts'
import type { EventRecorder } from './events.ts'

/** The first problems of a rejected text, short enough for an Event note (the API caps it at 1 KiB). */
const firstErrors = (errors: string[]): string => errors.slice(0, 3).join('; ') + (errors.length > 3 ? ` (+${errors.length - 3} more)` : '')

export class ReloadEvents implements ReloadReporter, TlsReporter {
  readonly #events: EventRecorder

  constructor (events: EventRecorder) {
    this.#events = events
  }

  /** The configuration at start was refused: the process exits without serving. */
  async refused (errors: string[]): Promise<void> {
    await this.#events.record('Warning', 'ConfigRejected', `refused to start: ${firstErrors(errors)}`)
  }

  reloaded (outcome: ReloadOutcome): void {
    const pending = outcome.pendingRestart.length > 0 ? `; needs a restart to apply: ${outcome.pendingRestart.join(', ')}` : ''
    if (outcome.result === 'success') {
      void this.#events.record('Normal', 'ConfigReloaded', `configuration ${outcome.snapshot.hash} applied${pending}`)
    } else if (outcome.result === 'failure') {
      void this.#events.record('Warning', 'ConfigRejected', `kept configuration ${outcome.snapshot.hash}: ${firstErrors(outcome.errors)}`)
    }
  }

  /** The public port's certificate files changed, and the new pair now serves new connections. */
  certificateRotated (pair: TlsPair): void {
    void this.#events.record('Normal', 'CertificateRotated', `serving certificate ${pair.serial}, valid until ${pair.validTo.toISOString()}`)
  }

  /** The files changed but do not hold a usable pair: the last good one still serves. */
  certificateRejected (errors: string[]): void {
    void this.#events.record('Warning', 'CertificateRejected', `kept the last good certificate: ${firstErrors(errors)}`)
  }
}
