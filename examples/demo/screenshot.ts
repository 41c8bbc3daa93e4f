// `npm run demo:screenshot [-- demo options]`: regenerate docs/demo.png, the README's picture of the
// demo, from the running demo in Debian's Chromium (the browser tests' launch options).
import { Writable } from 'node:stream'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { launchOptions } from '../../test/fixtures/browser.ts'
import { parseDemoArgs, startDemo } from './demo.ts'

const out = join(import.meta.dirname, '..', '..', 'docs', 'demo.png')
const demo = await startDemo({ ...parseDemoArgs(process.argv.slice(2)), destination: new Writable({ write (_c, _e, cb) { cb() } }) })
const browser = await chromium.launch(launchOptions())
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } })
  await page.goto(demo.appUrl)
  await page.frameLocator('#other').getByText('Waiting for the page').waitFor()
  await page.getByRole('button', { name: 'Redact from both origins' }).click()
  await page.locator('#own[data-state=ok]').waitFor()
  await page.frameLocator('#other').locator('[data-state=failed]').waitFor()
  await page.screenshot({ path: out })
  process.stdout.write(`wrote ${out}\n`)
} finally {
  await browser.close()
  demo.shutdown('done')
  await demo.done
}
