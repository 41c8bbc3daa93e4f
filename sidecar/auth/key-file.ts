// The API key file, kept current: read when authentication is configured, then watched the way the
// configuration file is (config/watch.ts: the directory, so that a Secret volume's `..data` swap is
// seen). A change that does not parse keeps the last good keys and says why, without quoting the file.
import { readFileSync } from 'node:fs'
import { watchConfigFile, type FileWatch } from '../config/watch.ts'
import { parseKeyFile, type ApiKey, type ParsedKeys } from './api-keys.ts'

/** The file read and parsed now: what the configuration rules check and what serving starts from. */
export function readKeyFile (path: string): ParsedKeys & { text?: string } {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    return { ok: false, errors: [`cannot read the file (${(err as NodeJS.ErrnoException).code as string})`] }
  }
  const parsed = parseKeyFile(text)
  return parsed.ok ? { ...parsed, text } : parsed
}

export interface KeyFileEvents {
  reloaded: (count: number) => void
  rejected: (errors: string[]) => void
}

export interface KeyFileOptions { debounceMs?: number | undefined; pollMs?: number | undefined }

export class WatchedKeyFile {
  #keys: readonly ApiKey[]
  readonly #watch: FileWatch

  /** `path` was checked when the configuration was validated; unreadable now, it starts with no keys. */
  constructor (path: string, events: KeyFileEvents, opts: KeyFileOptions = {}) {
    const first = readKeyFile(path)
    this.#keys = first.ok ? first.keys : []
    if (!first.ok) events.rejected(first.errors)
    this.#watch = watchConfigFile({
      path,
      initialText: first.text ?? '',
      debounceMs: opts.debounceMs,
      pollMs: opts.pollMs,
      onChange: (text) => {
        const parsed = parseKeyFile(text)
        if (!parsed.ok) { events.rejected(parsed.errors); return }
        this.#keys = parsed.keys
        events.reloaded(parsed.keys.length)
      },
      onError: (err) => { events.rejected([`cannot read the file (${err.code as string})`]) }
    })
  }

  get keys (): readonly ApiKey[] { return this.#keys }

  stop (): void { this.#watch.stop() }
}
