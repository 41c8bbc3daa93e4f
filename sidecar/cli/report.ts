// How the command line reports an invalid configuration: every problem, one per line, with its path.
import type { Io } from './io.ts'

export function reportInvalid (errors: string[], io: Io): number {
  io.err(`configuration invalid (${errors.length} problem${errors.length === 1 ? '' : 's'}):\n`)
  for (const e of errors) io.err(`  ${e}\n`)
  return 2
}
