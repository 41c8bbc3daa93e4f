// Serving from the configuration source the command line picked: validate its first text, then hand it to
// serve(), which follows it. The same for a file and for a ConfigMap.
import { loadConfigText, type LoadResult, type Overrides } from '../config/load.ts'
import type { ReloadReporter } from '../config/reload.ts'
import type { ConfigSource } from '../config/source.ts'
import { serve } from '../server.ts'
import { readPair } from '../tls.ts'
import type { TlsReporter } from '../tls-rotation.ts'
import type { Io } from './io.ts'
import { reportInvalid } from './report.ts'

export interface Mode {
  /** No source: the built-in defaults, nothing to follow. */
  source: ConfigSource | undefined
  reporter?: (ReloadReporter & TlsReporter & { refused (errors: string[]): Promise<void> }) | undefined
  /** Releases what the mode holds besides the source (the stand-in, the Event recorder). */
  close: () => Promise<void>
}

export function loadMode (mode: Mode, overrides: Overrides): LoadResult {
  return loadConfigText(mode.source?.text ?? '', mode.source?.name ?? 'defaults', overrides)
}

/** Serve until shutdown; the exit code. An invalid first text is reported (and recorded) instead. */
/** A first text, or certificate files, that cannot serve: reported (and recorded), and nothing listens. */
async function refuse (mode: Mode, errors: string[], io: Io): Promise<number> {
  await mode.reporter?.refused(errors)
  await mode.source?.stop()
  await mode.close()
  return reportInvalid(errors, io)
}

export async function serveMode (mode: Mode, overrides: Overrides, version: string, io: Io): Promise<number> {
  const loaded = loadMode(mode, overrides)
  if (!loaded.ok) return await refuse(mode, loaded.errors, io)
  // server.tls's files are read before anything listens: unreadable or unusable ones refuse to start.
  const files = loaded.snapshot.config.server.tls
  const pair = files === undefined ? undefined : await readPair(files)
  if (pair?.ok === false) return await refuse(mode, pair.errors, io)
  const running = await serve(loaded.snapshot, { version, overrides, source: mode.source, reporter: mode.reporter, tls: pair?.pair, tlsReporter: mode.reporter })
  io.started?.(running)
  const code = await running.done
  await mode.close()
  return code
}
