// `--standin`: the sidecar's only link to the development stand-in for the Private AI API, which
// lives in test/standin/ (cli/run.ts imports this file). The stand-in is a test
// double: it is not compiled into dist/ and not copied into the image. It is loaded on demand, by a
// path the compiler does not follow, so a checkout (Node 24 runs the .ts sources) starts it and a
// built sidecar says that it is absent (docs/ARCHITECTURE.md, "The development stand-in").
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The same words as test/standin/server.ts, which tags its answers with them (a test checks). */
export const STANDIN_NOTE = 'development stand-in for the Private AI container; not the real product'

/** What the sidecar needs of the stand-in (test/standin-load.test.ts checks it against the real one). */
export interface StandinHandle {
  url: string
  close: () => Promise<void>
}
export type StartStandin = (opts?: { host?: string; port?: number }) => Promise<StandinHandle>

/** From sidecar/standin/ in a checkout, and from dist/standin/ in a build inside one: <root>/test/standin/. */
export const STANDIN_MODULE = new URL('../../test/standin/server.ts', import.meta.url)

/** The stand-in's start function, or an error that says why there is none. */
export async function loadStandin (module: URL = STANDIN_MODULE): Promise<StartStandin> {
  if (!existsSync(fileURLToPath(module))) {
    throw new Error(`--standin: the development stand-in is not part of this build (no ${fileURLToPath(module)}); ` +
      'it runs from a checkout of the repository (npm run dev), and a real Private AI container needs --upstream instead')
  }
  const loaded = await import(module.href) as { startStandin: StartStandin }
  return loaded.startStandin
}

export async function startStandin (opts: { host?: string; port?: number } = {}): Promise<StandinHandle> {
  return await (await loadStandin())(opts)
}
