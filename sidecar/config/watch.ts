// File mode: notice when the configuration file changes and hand its new text over.
//
// Kubernetes updates a ConfigMap volume atomically (kubelet's AtomicWriter): it writes a new
// timestamped directory, points a `..data_tmp` symlink at it, renames that over `..data`, then deletes
// the old directory. The visible file is a symlink through `..data`, so the file itself never changes:
// watching it would miss every update. Its *directory* is watched (watch-dirs.ts), and the file is
// re-read by path (which follows the new symlinks). `subPath` mounts are copied once and never
// update; env vars from a ConfigMap never update either.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { watchDirs } from '../watch-dirs.ts'

export interface FileWatchOptions {
  path: string
  /** Called with the new text whenever the content differs from the last text seen. */
  onChange: (text: string) => void
  /** Called when a change was noticed but the file could not be read (mid-swap, removed …). */
  onError: (err: NodeJS.ErrnoException) => void
  debounceMs?: number
  /** The safety net for missed events. */
  pollMs?: number
  /** The content the process started with, so an event that changes nothing is ignored. */
  initialText: string
}

export interface FileWatch { stop: () => void }

const digest = (text: string): string => createHash('sha256').update(text).digest('hex')

export function watchConfigFile (opts: FileWatchOptions): FileWatch {
  let last = digest(opts.initialText)
  const checkOnce = async (): Promise<void> => {
    let text: string
    try {
      text = await readFile(opts.path, 'utf8')
    } catch (err) {
      opts.onError(err as NodeJS.ErrnoException)
      return
    }
    const d = digest(text)
    // (A check already reading when stop() is called may still report once; harmless while closing.)
    if (d === last) return
    last = d
    opts.onChange(text)
  }
  return watchDirs([dirname(opts.path)], checkOnce, {
    onError: opts.onError,
    debounceMs: opts.debounceMs,
    pollMs: opts.pollMs
  })
}
