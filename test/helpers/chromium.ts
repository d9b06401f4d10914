// Debian's Chromium through playwright-core, headless, quiet: no network of its own, no sandbox
// (tests run as root in CI), no first-run or sync chatter.
import { chromium, type Browser } from 'playwright-core'

export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
}
