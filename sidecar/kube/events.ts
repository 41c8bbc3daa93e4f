// Kubernetes Events (events.k8s.io/v1) on the sidecar's own pod, so that `kubectl describe pod` shows why a
// configuration was or was not applied. Recording an Event never throws and never holds anything up: a
// failure is logged as a warning. Events are not configuration; the reload reporter decides what to say.
import type { EventsV1Event } from '@kubernetes/client-node'
import type { KubeClient } from './client.ts'

/** The name Events carry as their reporting controller (a qualified name, as the API requires). */
export const REPORTING_CONTROLLER = 'pai-cors-sidecar'
/** The API refuses an Event whose note is longer than this many bytes. */
export const NOTE_MAX_BYTES = 1024

export type EventType = 'Normal' | 'Warning'
export type EventReason = 'ConfigReloaded' | 'ConfigRejected' | 'CertificateRotated' | 'CertificateRejected'
export interface EventPod { name: string; namespace: string; uid?: string }
export interface EventLog { debug(o: object, msg: string): void; warn(o: object, msg: string): void }

/** Cut a string to at most `max` UTF-8 bytes without splitting a character, marking the cut with `…`. */
export function truncateUtf8 (text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text
  let out = ''
  let bytes = 3 // the ellipsis
  for (const ch of text) {
    bytes += Buffer.byteLength(ch)
    if (bytes > max) break
    out += ch
  }
  return `${out}…`
}

export class EventRecorder {
  readonly #client: KubeClient
  /** The pod that Events are about; no Events when absent. */
  readonly #pod: EventPod | undefined
  readonly #log: EventLog
  /** stop() aborts this: every Event in flight ends at once. */
  readonly #lifetime = new AbortController()
  readonly #inFlight = new Set<Promise<void>>()

  constructor (client: KubeClient, pod: EventPod | undefined, log: EventLog) {
    this.#client = client
    this.#pod = pod
    this.#log = log
  }

  /** Post one Event about the pod. Resolves once it was accepted or refused; never rejects. */
  async record (type: EventType, reason: EventReason, note: string): Promise<void> {
    if (this.#pod === undefined || this.#lifetime.signal.aborted) return
    const p = this.#post(type, reason, note, this.#pod)
    this.#inFlight.add(p)
    await p
    this.#inFlight.delete(p)
  }

  /** Ends every Event in flight; resolves once they are gone. Later records do nothing. */
  async stop (): Promise<void> {
    this.#lifetime.abort()
    await Promise.all(this.#inFlight)
  }

  async #post (type: EventType, reason: EventReason, note: string, pod: EventPod): Promise<void> {
    const body = this.#event(type, reason, note, pod)
    try {
      await this.#client.call((options) => this.#client.events.createNamespacedEvent({ namespace: pod.namespace, body }, options), this.#lifetime.signal)
      this.#log.debug({ type, reason }, 'recorded a Kubernetes Event')
    } catch (err) {
      this.#log.warn({ type, reason, err: this.#client.explain(err).text }, 'could not record a Kubernetes Event')
    }
  }

  #event (type: EventType, reason: EventReason, note: string, pod: EventPod): EventsV1Event {
    return {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
      // V1MicroTime serialises with six fractional digits, as the API parses it. A plain Date type-checks here
      // too (the classes are structurally equal) but is sent with three and refused with 400.
      eventTime: new this.#client.k8s.V1MicroTime(),
      action: 'Reload',
      reason,
      note: truncateUtf8(note, NOTE_MAX_BYTES),
      type,
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: pod.name.slice(0, 128), // the API's limit; pod names may have up to 253 characters
      regarding: { kind: 'Pod', apiVersion: 'v1', name: pod.name, namespace: pod.namespace, uid: pod.uid }
    }
  }
}
