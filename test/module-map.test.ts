// The import rules of docs/ARCHITECTURE.md, "Module map", read from the sources: a change that breaks
// one fails here instead of drifting until someone notices.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'

const SIDECAR = join(import.meta.dirname, '..', 'sidecar')

interface Import { from: string, specifier: string, typeOnly: boolean, dynamic: boolean }

/** Static imports and re-exports, and dynamic imports of a string literal. An import clause holds no `;:=()` or quote. */
function importsOf (file: string, text: string): Import[] {
  const found: Import[] = []
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^;:=()'"]*?\sfrom\s+)?'([^']+)'/gm)) {
    found.push({ from: file, specifier: m[2] as string, typeOnly: m[1] !== undefined, dynamic: false })
  }
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) found.push({ from: file, specifier: m[1] as string, typeOnly: false, dynamic: true })
  return found
}

const files = readdirSync(SIDECAR, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).sort()
const all = files.flatMap((f) => importsOf(f, readFileSync(join(SIDECAR, f), 'utf8')))
const statics = (f: string): Import[] => all.filter((i) => i.from === f)
/** A relative import as a path under sidecar/ (`../x` from the top escapes it). */
const target = (i: Import): string => normalize(join(dirname(i.from), i.specifier))
const relativeImport = (i: Import): boolean => i.specifier.startsWith('.')
const bad = (list: Import[]): string[] => list.map((i) => `${i.from} imports ${i.specifier}`)

t.test('the parser sees every kind of import', async (t) => {
  const text = "import a from 'a'\nimport type { B } from './b.ts'\nimport {\n  c,\n  d\n} from '../c.ts'\nexport { e } from './e.ts'\nimport 'side'\n" +
    "export interface I {\n  x: string\n}\nexport const g = 'not an import'\nconst f = await import('f')\n// import x from 'comment'"
  t.same(importsOf('x/y.ts', text).map((i) => [i.specifier, i.typeOnly, i.dynamic]),
    [['a', false, false], ['./b.ts', true, false], ['../c.ts', false, false], ['./e.ts', false, false], ['side', false, false], ['f', false, true]])
  t.ok(files.includes('app.ts') && files.includes(join('cors', 'decide.ts')), 'the sources are found')
  t.ok(all.length > 50, `${all.length} imports`)
})

t.test('cors/ imports nothing outside itself but tldts: no fastify, no node:http, no config/, not even a type', async (t) => {
  const cors = files.filter((f) => f.startsWith('cors/')).flatMap(statics)
  t.ok(cors.length > 0)
  t.same(bad(cors.filter((i) => i.specifier !== 'tldts' && !(relativeImport(i) && target(i).startsWith('cors/')))), [])
})

t.test('config/, kube/ and auth/ import no fastify and none of the HTTP layer or the CLI', async (t) => {
  const forbidden = (i: Import): boolean => /^(fastify|@fastify\/)/.test(i.specifier) ||
    (relativeImport(i) && (['app.ts', 'server.ts', 'websocket.ts', 'admin.ts'].includes(target(i)) || target(i).startsWith('cli/') || target(i).startsWith('http/')))
  for (const dir of ['config/', 'kube/', 'auth/']) {
    const imports = files.filter((f) => f.startsWith(dir)).flatMap(statics)
    t.ok(imports.length > 0, dir)
    t.same(bad(imports.filter(forbidden)), [], dir)
  }
})

t.test('under sidecar/, only main.ts imports cli/', async (t) => {
  t.same(bad(all.filter((i) => !i.from.startsWith('cli/') && i.from !== 'main.ts' && relativeImport(i) && target(i).startsWith('cli/'))), [])
})

t.test('no file under sidecar/ imports one outside it (the stand-in, tests, bench, the chart)', async (t) => {
  t.same(bad(all.filter((i) => relativeImport(i) && target(i).startsWith('..'))), [])
})

t.test('@kubernetes/client-node is loaded lazily: statically, types only, so file mode never pays for it', async (t) => {
  const kube = all.filter((i) => i.specifier === '@kubernetes/client-node')
  t.ok(kube.some((i) => i.dynamic), 'it is imported where it is needed')
  t.same(bad(kube.filter((i) => !i.dynamic && !i.typeOnly)), [], 'and statically only for its types')
})

t.test('errors.ts and target.ts are leaves', async (t) => {
  t.same(bad([...statics('errors.ts'), ...statics('target.ts')]), [])
})

t.test('the gate (http/gate.ts) is pure: no fastify, undici or ws, so explain and the WebSocket upgrade can call it', async (t) => {
  const imports = statics(join('http', 'gate.ts'))
  t.ok(imports.length > 0)
  t.same(bad(imports.filter((i) => /^(fastify|@fastify\/|undici|ws)$/.test(i.specifier) || (relativeImport(i) && !['config/load.ts', 'cors/decide.ts', 'errors.ts', 'routes.ts'].includes(target(i))))), [])
})

t.test('tls.ts and tls-rotation.ts (the certificate) import no fastify, none of the HTTP layer and nothing of config/ but its types', async (t) => {
  const imports = [...statics('tls.ts'), ...statics('tls-rotation.ts')]
  t.ok(imports.length > 0)
  t.same(bad(imports.filter((i) => /^(fastify|@fastify\/|undici)/.test(i.specifier) ||
    (relativeImport(i) && (target(i).startsWith('http/') || ['app.ts', 'server.ts', 'websocket.ts', 'admin.ts'].includes(target(i)) || target(i).startsWith('cli/') || (target(i).startsWith('config/') && !i.typeOnly))))), [])
})
