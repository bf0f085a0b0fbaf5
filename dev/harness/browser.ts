// Headless Chromium for the tests that drive a page: Debian's `chromium` package (no downloaded browser: this
// machine reaches no browser CDN), controlled by playwright-core. `.ci/run` installs the package.
import { existsSync } from "node:fs";
import { type Browser, type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM_PATH = process.env.NOVA_CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * Why Chromium cannot run here, or undefined when it can. Tests skip with this reason outside CI; under CI=true a
 * missing browser is a failure (`.ci/run` installs it), so a green run always drove the real browser.
 */
export function chromiumUnavailable(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  const reason = `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium)`;
  if (process.env.CI === "true") throw new Error(`${reason}: CI must drive the real browser`);
  return reason;
}

export interface HeadlessChromium {
  browser: Browser;
  /** A fresh context (cookies, storage) per page under test. */
  newContext(): Promise<BrowserContext>;
  close(): Promise<void>;
}

/**
 * Starts Chromium headless (playwright-core gives it a fresh, temporary profile). The flags keep it off the network beyond the page's own origin
 * (background networking, component updates, sync and QUIC would try outside hosts this machine cannot reach);
 * `--no-sandbox` because tests run as root, where Chromium's sandbox refuses to start.
 */
export async function launchChromium(): Promise<HeadlessChromium> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    browser,
    newContext: () => browser.newContext({ viewport: { width: 1280, height: 800 } }),
    close: () => browser.close(),
  };
}
