// Where the configuration text comes from: a file, or a ConfigMap through the Kubernetes API. The CLI opens
// one and validates its first text; serve() starts it, applies every later text as a reload, and stops it
// when it closes (docs/ARCHITECTURE.md, "Reload").

/** Something that went wrong while following the source; logged as a warning, the last good configuration stays. */
export interface SourceProblem {
  message: string
  /** Log fields: codes, paths, resourceVersions; never the content. */
  fields: object
}

export interface ConfigSource {
  /** Names the text in messages and snapshots: a path, or `configmap <namespace>/<name> key <key>`. */
  readonly name: string
  /** The text when the source was opened: the configuration the process starts with. */
  readonly text: string
  /** Follow changes from `text` on (called once): every different text to onText, in order; problems to onProblem. */
  start (onText: (text: string) => void, onProblem: (problem: SourceProblem) => void): void
  /** Stop following; resolves once nothing of it is left running. */
  stop (): Promise<void>
}
