import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCli } from './helpers/cli.ts'
import { launchChromium } from './helpers/chromium.ts'
import { requirePeers } from './helpers/peers.ts'

const peers = requirePeers('chromium')
const repo = path.resolve(import.meta.dirname, '..')

describe.skipIf(!peers)('the dashboard in Chromium', () => {
  let browser: Browser
  let server: Awaited<ReturnType<typeof startCli>>
  let shots: string

  beforeAll(async () => {
    shots = mkdtempSync(path.join(tmpdir(), 'resident-dashboard-'))
    // The repository's own examples and configuration, as `npm start` serves them.
    server = await startCli(['serve', '--port', '0'], { cwd: repo, env: { NODE_ENV: 'production' } })
    browser = await launchChromium(peers!.chromium)
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    server?.child.kill('SIGTERM')
    await server?.exited
    rmSync(shots, { recursive: true, force: true })
  })

  it('shows an extension resident, then unloaded after an admin unload, live, with no console errors', async () => {
    const url = server.url
    expect((await fetch(`${url}/hello/greet?name=dash`)).status).toBe(200)
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`) })
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`))
    page.on('requestfailed', (r) => { if (!r.url().endsWith('/_resident/events')) problems.push(`failed: ${r.url()}`) })

    const response = await page.goto(`${url}/_resident/`)
    expect(response!.status()).toBe(200)
    expect(response!.headers()['content-security-policy']).toContain("script-src 'self'")
    const hello = page.locator('#sec-extensions tr[data-key="hello"] td.state')
    await expect.poll(() => hello.textContent(), { timeout: 10_000 }).toBe('resident')
    await expect.poll(() => page.locator('#live').textContent(), { timeout: 10_000 }).toBe('live')
    // A mark that a navigation or reload would wipe out.
    await page.evaluate(() => { (window as unknown as { mark: number }).mark = 42 })

    const unload = await fetch(`${url}/_resident/extensions/hello/unload`, { method: 'POST', headers: { 'x-resident-admin': 'test' } })
    expect(unload.status).toBe(200)
    await expect.poll(() => hello.textContent(), { timeout: 10_000 }).toBe('unloaded')
    await expect.poll(() => page.locator('#sec-retired tbody tr').count(), { timeout: 10_000 }).toBeGreaterThan(0)
    expect(await page.evaluate(() => (window as unknown as { mark?: number }).mark)).toBe(42)

    // The page's own button: reload through the admin API brings it back, again without a reload.
    await page.locator('#sec-extensions tr[data-key="hello"] button[data-action="reload"]').click()
    await expect.poll(() => hello.textContent(), { timeout: 10_000 }).toBe('resident')
    await expect.poll(() => page.locator('#message').textContent(), { timeout: 10_000 }).toBe('hello: reload done')
    expect(await page.evaluate(() => (window as unknown as { mark?: number }).mark)).toBe(42)

    const file = path.join(process.env.RESIDENT_SCREENSHOTS ?? shots, 'dashboard.png')
    await page.screenshot({ path: file, fullPage: true })
    expect(statSync(file).size).toBeGreaterThan(10_000)
    expect(problems).toEqual([])
    await page.close()
  }, 60_000)

  it('is a complete snapshot without JavaScript, with no button that would not work', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false })
    const page = await context.newPage()
    await page.goto(`${server.url}/_resident/`)
    expect(await page.locator('#sec-extensions tr[data-key="hello"] td').first().textContent()).toBe('hello')
    expect(await page.locator('#sec-filters tbody tr').count()).toBe(5)
    expect(await page.locator('#sec-host tbody tr').count()).toBe(1)
    expect(await page.locator('button:visible').count()).toBe(0)
    await context.close()
  }, 30_000)
})
