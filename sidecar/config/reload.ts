// Applying a new configuration text to a running sidecar (docs/ARCHITECTURE.md, "Reload"). Either a whole new snapshot is
// swapped in, or nothing changes: an invalid text keeps the last good configuration and says why.
// Fields that only take effect at start (ports, upstream, shutdown) are reported as needing a
// restart and kept at their running values, so no snapshot ever describes a half-applied state.
import type { Metrics } from '../metrics.ts'
import { compile, validate, type Overrides, type Snapshot } from './load.ts'
import type { Config } from './schema.ts'
import type { ConfigStore } from './store.ts'

/** Read once at start: the listeners, the upstream pool and admission are built from them. */
export const RESTART_ONLY = ['server', 'admin', 'upstream', 'shutdown'] as const

export type ReloadResult = 'success' | 'failure' | 'unchanged'

export interface ReloadStatus {
  result: ReloadResult | undefined
  at: string | undefined
  /** The last rejected text's problems (the first ten), until a later text is accepted. */
  errors: string[]
  /** Fields changed in the source that the running process keeps until it restarts. */
  pendingRestart: string[]
}

export interface ReloadOutcome { result: ReloadResult; errors: string[]; pendingRestart: string[]; snapshot: Snapshot }

/** Told about every reload's outcome (Kubernetes mode records an Event for each). Must not throw. */
export interface ReloadReporter { reloaded (outcome: ReloadOutcome): void }

export interface ReloaderDeps {
  store: ConfigStore
  metrics: Metrics
  overrides: Overrides
  source: string
  log: { info: (o: object, msg: string) => void; warn: (o: object, msg: string) => void; error: (o: object, msg: string) => void }
  /** Applies log.level, which is reloadable. */
  setLevel: (level: string) => void
  reporter?: ReloadReporter | undefined
}

/** Dotted paths whose values differ between two validated blocks (leaves only). */
export function changedPaths (a: unknown, b: unknown, at: string): string[] {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !Array.isArray(a)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)])
    return [...keys].flatMap((k) => changedPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`))
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [at]
}

/**
 * The running values of the restart-only blocks, the new values of everything else. Both configurations
 * are valid and no schema or security rule spans a restart-only block and another, so the result is
 * valid too.
 */
function keepRunning (next: Readonly<Config>, running: Readonly<Config>): Readonly<Config> {
  return { ...next, ...Object.fromEntries(RESTART_ONLY.map((block) => [block, running[block]])) }
}

export class Reloader {
  readonly #deps: ReloaderDeps
  #status: ReloadStatus = { result: undefined, at: undefined, errors: [], pendingRestart: [] }

  constructor (deps: ReloaderDeps) {
    this.#deps = deps
  }

  get status (): ReloadStatus { return this.#status }

  apply (text: string): ReloadOutcome {
    const outcome = this.#apply(text)
    this.#deps.reporter?.reloaded(outcome)
    return outcome
  }

  #apply (text: string): ReloadOutcome {
    const { store, metrics, overrides, source, log } = this.#deps
    const running = store.current()
    const validated = validate(text, source, overrides)
    if (!validated.ok) {
      metrics.configReloads.inc({ result: 'failure' })
      log.error({ errors: validated.errors, hash: running.hash }, 'configuration rejected: the last good configuration still serves')
      this.#status = { ...this.#status, result: 'failure', at: new Date().toISOString(), errors: validated.errors.slice(0, 10) }
      return { result: 'failure', errors: validated.errors, pendingRestart: this.#status.pendingRestart, snapshot: running }
    }
    const next = validated.config
    const pendingRestart = RESTART_ONLY.flatMap((block) => changedPaths(running.config[block], next[block], block))
    if (pendingRestart.length > 0) {
      log.warn({ pendingRestart }, 'configuration changes that take effect only after a restart are kept at their running values')
    }
    const snapshot = compile(pendingRestart.length > 0 ? keepRunning(next, running.config) : next, source)
    if (snapshot.hash === running.hash) {
      this.#status = { ...this.#status, errors: [], pendingRestart }
      return { result: 'unchanged', errors: [], pendingRestart, snapshot: running }
    }
    store.replace(snapshot)
    this.#deps.setLevel(snapshot.config.log.level)
    metrics.configReloads.inc({ result: 'success' })
    log.info({ hash: snapshot.hash, previous: running.hash, generation: store.generation, origins: snapshot.config.cors.allowedOrigins.length }, 'configuration reloaded')
    this.#status = { result: 'success', at: new Date().toISOString(), errors: [], pendingRestart }
    return { result: 'success', errors: [], pendingRestart, snapshot }
  }
}
