// The console page driven in headless Chromium (Debian's package) against the bridge on the real Synapse: what the
// API does appears on the page through the WebSocket's query-token path and the media route.
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  chromiumUnavailable,
  type HeadlessChromium,
  launchChromium,
  waitFor,
} from "@nova-matrix/dev/harness";
import { startTestStack, type TestStack, testLogger } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../src/config/secret.ts";
import { type RunningService, runService } from "../src/service/run.ts";
import { gradientPng } from "./samples.ts";
import { call, runTestService } from "./service-helpers.ts";
import { sineWav } from "./wav.ts";

const API_TOKEN = randomBytes(32).toString("base64url");
/** Where the screenshot goes (`NOVA_CONSOLE_SCREENSHOT=docs/console.png` refreshes the README's picture). */
const SCREENSHOT = process.env.NOVA_CONSOLE_SCREENSHOT ?? join(tmpdir(), "nova-console.png");

const noBrowser = chromiumUnavailable();
const suite = noBrowser
  ? (name: string, body: () => void) => describe.skip(`${name} [skipped: ${noBrowser}]`, body)
  : describeWithHarness;

suite("the console page in headless Chromium", () => {
  let stack: TestStack;
  let service: RunningService;
  let chromium: HeadlessChromium;
  const conversation = `console-${randomBytes(3).toString("hex")}`;
  const api = (method: string, path: string, json: unknown) =>
    call(service.url, method, path, { token: API_TOKEN, json });

  beforeAll(async () => {
    stack = await startTestStack({ serverName: "console.test" });
    service = await runTestService(stack, {
      databaseUrl: await stack.newBridgeDatabase(),
      apiToken: new Secret(API_TOKEN),
      signingKey: new Secret(randomBytes(32).toString("base64url")),
      devPages: true,
    });
    await service.active;
    expect(
      (
        await api("POST", "/v1/conversations", {
          conversation_id: conversation,
          kind: "group",
          members: ["alice", "bob"],
        })
      ).status,
    ).toBe(200);
    chromium = await launchChromium();
  });

  afterAll(async () => {
    await chromium?.close();
    await service?.stop();
    await stack?.stop();
  });

  it("shows live message.new, message.edited and message.deleted, media, readiness; sends as its user", async () => {
    const minted = await api("POST", "/v1/user-tokens", { user_id: "alice" });
    const { token } = minted.body as { token: string };
    const page = await (await chromium.newContext()).newPage();
    // A page expression evaluated from the test (DevTools' evaluate: the page's CSP forbids eval in the page).
    const until = (what: string, expression: string) =>
      waitFor(async () => (await page.evaluate(expression)) === true, {
        timeoutMs: 30_000,
        describe: () => `the console never showed ${what}`,
      });
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(error.message));
    page.on("console", (message) => {
      // Failed loads are reported with their URL below.
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource"))
        problems.push(message.text());
    });
    page.on("response", (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} ${new URL(response.url()).pathname}`);
    });

    // The token in the fragment: the page takes it and drops it from the address bar.
    await page.goto(`${service.url}/console#token=${token}`);
    await until("the token left the address bar", "location.hash === ''");
    await page.getByText("signed in as alice").waitFor();
    await page.locator("#stream[data-state='open']").waitFor();
    await page.locator("#status[data-state='ready']").waitFor({ timeout: 30_000 });
    await page.locator(`button[data-conversation-id='${conversation}']`).click();

    // A message sent through the API (by bob) appears, is edited in place, and goes.
    const sent = await api("POST", `/v1/conversations/${conversation}/messages`, {
      sender_id: "bob",
      text: "hello from the API",
      client_message_id: "console-1",
    });
    const messageId = (sent.body as { message_id: string }).message_id;
    const item = page.locator(`li[data-message-id='${messageId}']`);
    await item.getByText("hello from the API").waitFor();
    const path = `/v1/conversations/${conversation}/messages/${encodeURIComponent(messageId)}`;
    expect((await api("PATCH", path, { sender_id: "bob", text: "edited through the API" })).status).toBe(200);
    await item.getByText("edited through the API").waitFor();
    await item.getByText("(edited)").waitFor();
    expect((await api("DELETE", path, { sender_id: "bob" })).status).toBe(200);
    await item.waitFor({ state: "detached" });

    // An image shown through the media route (the token in the query), an audio player with its metadata loaded.
    const upload = (data: Uint8Array, type: string, key: string) =>
      call(
        service.url,
        "POST",
        `/v1/conversations/${conversation}/media?sender_id=bob&client_message_id=${key}`,
        {
          token: API_TOKEN,
          raw: data,
          contentType: type,
        },
      );
    expect((await upload(gradientPng(320, 200), "image/png", "console-image")).status).toBe(200);
    expect((await upload(sineWav(1500), "audio/wav", "console-audio")).status).toBe(200);
    await until(
      "an image shown through the media route",
      "[...document.querySelectorAll('#messages img')].some((i) => i.complete && i.naturalWidth > 0)",
    );
    await until(
      "an audio player with its metadata",
      "[...document.querySelectorAll('#messages audio')].some((a) => a.readyState >= 1 && a.duration > 1)",
    );

    // The page's own composer sends as alice (her user token), and the message comes back on the stream.
    await page.locator("#text").fill("typed in the console");
    await page.locator("#send").click();
    await page.locator("li.mine").getByText("typed in the console").waitFor();
    await expect(page.locator("#lag").textContent()).resolves.toMatch(/sync lag: \d+\.\d s/);

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(problems).toEqual([]);
  });

  it("is served only where the dev pages are on, and the API reference with it", async () => {
    const docs = await fetch(`${service.url}/v1/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toMatch(/swagger/i);
    const off = await runService({
      config: { enabled: false },
      databaseUrl: undefined,
      apiToken: new Secret(API_TOKEN),
      signingKey: new Secret(randomBytes(32).toString("base64url")),
      host: "127.0.0.1",
      port: 0,
      logger: testLogger(),
    });
    try {
      expect((await fetch(`${off.url}/console`)).status).toBe(404);
      expect((await fetch(`${off.url}/v1/docs/`)).status).toBe(404);
      expect((await fetch(`${off.url}/v1/openapi.json`)).status).toBe(200);
    } finally {
      await off.stop();
    }
  });
});
