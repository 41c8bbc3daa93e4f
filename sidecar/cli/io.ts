// Where the command line writes, and how it hands over the running server.
import type { Running } from '../server.ts'

export interface Io {
  out: (text: string) => void
  err: (text: string) => void
  /** Called with the running server (tests stop it; main.ts wires signals). */
  started?: (running: Running) => void
}
