// The linter npm test runs (.ci/eslint.config.js) catches what it is there for, on every folder.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { ESLint } from 'eslint'

const root = fileURLToPath(new URL('..', import.meta.url))
const eslint = new ESLint({ cwd: root, overrideConfigFile: `${root}.ci/eslint.config.js` })

/** The rule ids reported for `code`, linted as if it were the file at `path` (type-aware rules included). */
async function rulesFor (code: string, path: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${path}` })
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message)
}

t.test('a promise nobody awaits, a promise where a callback returns nothing, and unused code are errors', async (t) => {
  const code = [
    "import { readFile } from 'node:fs/promises'",
    "import { unused } from 'node:os'",
    'export function f (cb: (fn: () => void) => void): void {',
    "  readFile('x')",
    "  cb(async () => { await readFile('y') })",
    '}',
    ''
  ].join('\n')
  t.same((await rulesFor(code, 'sidecar/drain.ts')).sort(), ['@typescript-eslint/no-floating-promises', '@typescript-eslint/no-misused-promises', '@typescript-eslint/no-unused-vars'])
  t.same(await rulesFor("import { readFile } from 'node:fs/promises'\nexport function f (): void {\n  void readFile('x')\n}\n", 'sidecar/drain.ts'), [], 'void marks a promise left alone on purpose')
})

t.test("tap's subtests are tap's to await; the style is neostandard's", async (t) => {
  t.same(await rulesFor("import t from 'tap'\nt.test('x', async () => {})\n", 'test/drain.test.ts'), [])
  t.same(await rulesFor('export const a = 1;\n', 'sidecar/target.ts'), ['@stylistic/semi'])
})

t.test('every folder with code is linted', async (t) => {
  for (const file of ['sidecar/app.ts', 'test/lint.test.ts', 'test/standin/server.ts', 'bench/run.ts', 'examples/demo/demo.ts', 'examples/demo/app.js', 'charts/schema.ts', 'charts/pai-cors-sidecar/files/helm-test.mjs', '.ci/eslint.config.js']) {
    t.notOk(await eslint.isPathIgnored(`${root}${file}`), file)
  }
  t.ok(await eslint.isPathIgnored(`${root}node_modules/tap/package.json`), 'not node_modules')
})
