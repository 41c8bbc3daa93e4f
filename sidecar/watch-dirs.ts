// Following files that Kubernetes swaps atomically (a ConfigMap or Secret volume: the kubelet writes a
// new timestamped directory and renames a `..data` symlink over the old one), for the configuration
// file (config/watch.ts) and the TLS pair (tls-rotation.ts). The files themselves are never written,
// so their *directories* are watched; a change is debounced, and the caller re-reads by path. A slow
// poll catches events the OS dropped. Checks run one at a time, in order, so a slow read started by
// the poll can never apply older contents after newer ones read meanwhile.
import { watch, type FSWatcher } from 'node:fs'

export interface DirWatchOptions {
  /** Told when a watch fails; the failed watch is closed and the poll goes on. */
  onError?: ((err: NodeJS.ErrnoException) => void) | undefined
  debounceMs?: number | undefined
  pollMs?: number | undefined
}

export interface DirWatch { stop: () => void }

export function watchDirs (dirs: Iterable<string>, check: () => Promise<void>, opts: DirWatchOptions): DirWatch {
  let chain = Promise.resolve()
  const run = (): void => { chain = chain.then(check) }
  let timer: NodeJS.Timeout | undefined
  const soon = (): void => {
    clearTimeout(timer)
    timer = setTimeout(run, opts.debounceMs ?? 100)
  }
  const watchers: FSWatcher[] = [...new Set(dirs)].map((dir) => watch(dir, soon))
  for (const w of watchers) {
    w.on('error', w.close.bind(w))
    if (opts.onError !== undefined) w.on('error', opts.onError)
  }
  const poll = setInterval(run, opts.pollMs ?? 10_000)
  poll.unref()
  return {
    stop: () => {
      clearTimeout(timer)
      clearInterval(poll)
      for (const w of watchers) w.close()
    }
  }
}
