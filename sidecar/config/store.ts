// One immutable snapshot at a time. A request takes `current()` once when it starts and keeps it, so a
// reload never changes the policy under a request in flight (docs/ARCHITECTURE.md, "Configuration": mutate nothing, swap a snapshot).
import type { Snapshot } from './load.ts'

export class ConfigStore {
  #snapshot: Snapshot
  #generation = 1

  constructor (snapshot: Snapshot) {
    this.#snapshot = snapshot
  }

  current (): Snapshot {
    return this.#snapshot
  }

  /** Increases by one with every accepted configuration. */
  get generation (): number {
    return this.#generation
  }

  replace (snapshot: Snapshot): void {
    this.#snapshot = snapshot
    this.#generation++
  }
}
