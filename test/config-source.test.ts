// The two configuration sources behind one shape: a file (read when opened, then watched) and a ConfigMap
// (listed when opened, then watched through the fake Kubernetes API). Both hand over only later, different
// texts, report problems without the content, and stop cleanly.
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { openConfigMapSource } from '../sidecar/config/configmap-source.ts'
import { openFileSource } from '../sidecar/config/file-source.ts'
import type { SourceProblem } from '../sidecar/config/source.ts'
import { connectKube } from '../sidecar/kube/client.ts'
import { startFakeKube } from './fixtures/fake-kube.ts'

async function until (check: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

t.test('a file source: its text when opened, a change made before start() seen after it, problems by code', async (t) => {
  const dir = t.testdir({ 'config.yaml': 'a: 1\n' })
  const path = join(dir, 'config.yaml')
  const opened = await openFileSource(path, { debounceMs: 10, pollMs: 50 })
  if (!opened.ok) throw new Error(opened.errors.join('\n'))
  const source = opened.source
  t.equal(source.name, path)
  t.equal(source.text, 'a: 1\n')
  writeFileSync(path, 'a: 2\n')
  const texts: string[] = []
  const problems: SourceProblem[] = []
  source.start((text) => { texts.push(text) }, (problem) => { problems.push(problem) })
  t.teardown(() => source.stop())
  await until(() => texts.length === 1, 'the change made before start()')
  t.same(texts, ['a: 2\n'])
  rmSync(path)
  await until(() => problems.length > 0, 'the missing file')
  t.match(problems[0], { message: 'configuration file not readable; keeping the last good configuration', fields: { code: 'ENOENT', path } })
  writeFileSync(path, 'a: 3\n')
  await until(() => texts.length === 2, 'the file back')
  t.same(texts, ['a: 2\n', 'a: 3\n'])
  await source.stop()
  writeFileSync(path, 'a: 4\n')
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(texts.length, 2, 'nothing after stop()')
})

t.test('a file source that cannot be read is not opened; one never started stops at once', async (t) => {
  const dir = t.testdir({ 'config.yaml': 'a: 1\n' })
  t.match(await openFileSource(join(dir, 'missing.yaml')), { ok: false, errors: [/missing\.yaml: cannot read the file \(ENOENT\)$/] })
  const opened = await openFileSource(join(dir, 'config.yaml'))
  if (!opened.ok) throw new Error(opened.errors.join('\n'))
  await opened.source.stop()
})

t.test('a ConfigMap source: its name and text, its changes, and its problems as log fields without the content', async (t) => {
  const fake = await startFakeKube()
  t.teardown(() => fake.close())
  fake.setConfigMap({ 'config.yaml': 'a: 1\n' })
  const log = { info () {}, warn () {}, debug () {} }
  const client = await connectKube({ kubeConfig: fake.kubeConfig() })
  const source = await openConfigMapSource(client, { namespace: fake.namespace, name: fake.name, key: 'config.yaml', log })
  t.teardown(() => source.stop())
  t.equal(source.name, `configmap ${fake.namespace}/${fake.name} key config.yaml`)
  t.equal(source.text, 'a: 1\n')
  const texts: string[] = []
  const problems: SourceProblem[] = []
  source.start((text) => { texts.push(text) }, (problem) => { problems.push(problem) })
  await until(() => fake.openWatches === 1, 'the watch')
  fake.setConfigMap({ 'config.yaml': 'a: 2\n' })
  await until(() => texts.length === 1, 'the change')
  t.same(texts, ['a: 2\n'])
  fake.deleteConfigMap()
  await until(() => problems.length === 1, 'the deletion')
  t.match(problems[0], { message: 'configuration source problem; keeping the last good configuration', fields: { problem: /^ConfigMap sidecar\/cors-config was deleted/ } })
  t.notOk(JSON.stringify(problems).includes('a: '), 'no content')
  await source.stop()
  await until(() => fake.openWatches === 0, 'the watch closed')
})
