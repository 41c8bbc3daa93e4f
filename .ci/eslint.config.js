// The linter: neostandard (the style fastify itself uses) over every TypeScript and JavaScript file,
// plus typescript-eslint's type-aware rules for what a proxy cannot afford: a promise nobody awaits
// or catches (an unhandled rejection ends the process), a promise where a callback's result is
// ignored, and code nothing uses. `npm test` runs it (`npm run lint`); it lives in .ci/ because the
// repository's top level holds the project files only, so the scripts pass `--config`.
import { fileURLToPath } from 'node:url'
import { neostandard } from 'neostandard'

const root = fileURLToPath(new URL('..', import.meta.url))

export default [
  { basePath: root, ignores: ['node_modules/**', 'dist/**', 'coverage/**', '.tap/**'] },
  ...neostandard({ ts: true }).map((c) => ({ ...c, basePath: root })),
  {
    basePath: root,
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: root } },
    rules: {
      // tap tracks every subtest it starts: t.test()'s promise is tap's to await, not the caller's.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { args: 'after-used', argsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }]
    }
  },
  // A closure may read a variable before its one assignment (a log line of a request refused early).
  { basePath: root, files: ['**/*.ts', '**/*.js', '**/*.mjs'], rules: { 'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }] } },
  // `void promise` is how a promise that is deliberately not awaited is marked (no-floating-promises).
  { basePath: root, files: ['**/*.ts', '**/*.js', '**/*.mjs'], rules: { 'no-void': ['error', { allowAsStatement: true }] } },
  {
    basePath: root,
    files: ['test/**/*.ts'],
    rules: {
      // A test polls until a callback sets what the loop condition reads.
      'no-unmodified-loop-condition': 'off',
      // ws's verifyClient(info, cb) takes cb(true | false), not a Node-style error first.
      'n/no-callback-literal': 'off'
    }
  },
  // The demo page runs in a browser; the chart's helm-test script runs on the pod's Node.
  { basePath: root, files: ['examples/demo/app.js'], languageOptions: { globals: { window: 'readonly', document: 'readonly', fetch: 'readonly', WebSocket: 'readonly', console: 'readonly', location: 'readonly' } } },
  { basePath: root, files: ['charts/**/*.mjs'], languageOptions: { globals: { process: 'readonly', fetch: 'readonly', console: 'readonly', URL: 'readonly' } } }
]
