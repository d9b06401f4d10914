// The HTML report of a real `resident bench` run, opened in Debian's Chromium: one bar per target,
// labelled, with the numbers of the JSON document the same run printed.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from './helpers/cli.ts'
import { launchChromium } from './helpers/chromium.ts'
import { requirePeers } from './helpers/peers.ts'

const peers = requirePeers('chromium')
const dir = mkdtempSync(path.join(tmpdir(), 'resident-bench-report-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe.skipIf(!peers)('resident bench --html in Chromium', () => {
  it('renders one bar per target, with labels and numbers matching the JSON', async () => {
    const html = path.join(dir, 'report.html')
    const r = await runCli(['bench', '--duration', '0.5', '--warmup', '0', '--rounds', '1', '--connections', '4',
      '--modes', 'inprocess', '--baselines', 'node-http,fastify', '--json', '--html', html])
    expect(r.code).toBe(0)
    const doc = JSON.parse(r.stdout) as { modes: { name: string; reqPerSec: number; p50: number }[]; baselines: { name: string; reqPerSec: number }[] }
    const expected = [...doc.modes, ...doc.baselines]

    const browser = await launchChromium(peers!.chromium)
    try {
      const page = await browser.newPage()
      const problems: string[] = []
      page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()) })
      page.on('requestfailed', (q) => problems.push(`request failed: ${q.url()}`))
      await page.goto(pathToFileURL(html).href)
      const bars = await page.$$eval('#throughput g.bar', (gs) => gs.map((g) => ({
        target: g.getAttribute('data-target'),
        value: Number(g.getAttribute('data-value')),
        label: g.querySelector('text.label')?.textContent,
        shown: g.querySelector('text.value')?.textContent,
        width: Number(g.querySelector('rect')?.getAttribute('width')),
        visible: (g.querySelector('rect') as SVGGraphicsElement | null)?.getBBox().height ?? 0,
      })))
      expect(bars.map((b) => b.target)).toEqual(expected.map((t) => t.name))
      for (const [i, b] of bars.entries()) {
        const t = expected[i]!
        expect(b.label).toBe(t.name)
        expect(b.value).toBeCloseTo(t.reqPerSec, 2)
        expect(Number(b.shown)).toBeCloseTo(t.reqPerSec, -1)
        expect(b.width).toBeGreaterThan(0)
        expect(b.visible).toBeGreaterThan(0)
      }
      // The faster target draws the longer bar.
      const byValue = [...bars].sort((a, b) => a.value - b.value)
      expect(byValue.map((b) => b.width)).toEqual([...byValue.map((b) => b.width)].sort((a, b) => a - b))
      const p50 = await page.$eval(`#latency g.latency[data-target="inprocess"] circle[data-pct="p50"]`, (c) => Number(c.getAttribute('data-value')))
      expect(p50).toBeCloseTo(doc.modes[0]!.p50, 5)
      expect(await page.textContent('h1')).toContain('hello.greet')
      await page.screenshot({ path: path.join(dir, 'report.png'), fullPage: true })
      expect(problems).toEqual([])
    } finally {
      await browser.close()
    }
  })
})
