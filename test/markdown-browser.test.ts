import path from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCli } from './helpers/cli.ts'
import { launchChromium } from './helpers/chromium.ts'
import { requirePeers } from './helpers/peers.ts'

const peers = requirePeers('chromium')
const repo = path.resolve(import.meta.dirname, '..')

// The markdown example renders a client's text as a page on the host's own origin, where a script
// could read /_resident/status and send admin POSTs. In a real browser, nothing in the text runs.
describe.skipIf(!peers)('the markdown example\'s page in Chromium', () => {
  let browser: Browser
  let server: Awaited<ReturnType<typeof startCli>>

  beforeAll(async () => {
    server = await startCli(['serve', '--port', '0'], { cwd: repo, env: { NODE_ENV: 'production' } })
    browser = await launchChromium(peers!.chromium)
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    server?.child.kill('SIGTERM')
    await server?.exited
  })

  it('runs no script from the text: not inline, not an event handler, not a link, and fetches nothing of the host', async () => {
    const text = [
      '# Hostile',
      '<script>window.ran = "script"; fetch("/_resident/status")</script>',
      '<img src="/nothing" onerror="window.ran = \'onerror\'">',
      '<svg onload="window.ran = \'svg\'"></svg>',
      '[click me](javascript:window.ran=\'link\')',
      '<a id="raw" href="javascript:window.ran=\'raw\'">raw</a>',
      '![pic](javascript:window.ran=\'img\')',
    ].join('\n\n')
    const page = await browser.newPage()
    const dialogs: string[] = []
    const requests: string[] = []
    page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss() })
    page.on('request', (r) => requests.push(new URL(r.url()).pathname))
    const response = await page.goto(`${server.url}/markdown/render?text=${encodeURIComponent(text)}`)
    expect(response!.status()).toBe(200)
    expect(await page.locator('h1').textContent()).toBe('Hostile')
    // The raw HTML shows as text.
    expect(await page.locator('body').textContent()).toContain('<script>window.ran')
    expect(await page.locator('script, img[onerror], svg, a#raw').count()).toBe(0)
    // The sandbox gives the page an origin of its own: even a script would be a stranger here.
    expect(await page.evaluate(() => window.origin)).toBe('null')
    await page.getByText('click me').click()
    await page.waitForLoadState()
    expect(await page.evaluate(() => (window as unknown as { ran?: string }).ran)).toBeUndefined()
    expect(dialogs).toEqual([])
    expect(requests.filter((p) => p.startsWith('/_resident'))).toEqual([])
    await page.close()
  }, 60_000)
})
