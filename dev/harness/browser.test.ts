import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { chromiumUnavailable, launchChromium } from "./browser.ts";

const reason = chromiumUnavailable();
(reason ? describe.skip : describe)(`headless Chromium${reason ? ` [skipped: ${reason}]` : ""}`, () => {
  it("loads a page from loopback, runs its script on a click, and takes a screenshot", async () => {
    const server = createServer((_request, response) => {
      response.setHeader("content-type", "text/html");
      response.end(`<button onclick="document.body.dataset.clicked='yes'">go</button>`);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const chromium = await launchChromium();
    try {
      const page = await (await chromium.newContext()).newPage();
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      await page.click("button");
      await page.waitForFunction("document.body.dataset.clicked === 'yes'");
      const png = await page.screenshot();
      expect(png.subarray(1, 4).toString("ascii")).toBe("PNG");
    } finally {
      await chromium.close();
      server.close();
    }
  });
});
