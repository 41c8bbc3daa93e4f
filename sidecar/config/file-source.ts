// A configuration file as a ConfigSource: read once when opened, then watched (config/watch.ts), so a
// change made between the read and start() is still seen as a change.
import { readConfigFile } from './load.ts'
import type { ConfigSource } from './source.ts'
import { watchConfigFile, type FileWatch } from './watch.ts'

export interface FileSourceOptions { debounceMs?: number | undefined; pollMs?: number | undefined }

export type Opened = { ok: true; source: ConfigSource } | { ok: false; errors: string[] }

export async function openFileSource (path: string, opts: FileSourceOptions = {}): Promise<Opened> {
  const read = await readConfigFile(path)
  if (!read.ok) return read
  let watch: FileWatch | undefined
  const source: ConfigSource = {
    name: path,
    text: read.text,
    start (onText, onProblem) {
      watch = watchConfigFile({
        path,
        initialText: read.text,
        debounceMs: opts.debounceMs,
        pollMs: opts.pollMs,
        onChange: onText,
        // Mid-swap reads and a briefly missing file are expected; the next event or poll tries again.
        onError: (err) => { onProblem({ fields: { code: err.code, path }, message: 'configuration file not readable; keeping the last good configuration' }) }
      })
    },
    async stop () { watch?.stop() }
  }
  return { ok: true, source }
}
