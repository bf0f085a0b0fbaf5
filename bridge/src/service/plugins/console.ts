// The console page (BRIDGE_DEV_PAGES): four static files, read once, served without a token. The page itself
// holds nothing: everything it shows comes from the public API with the user token its visitor brings.
import { readFile } from "node:fs/promises";
import type { FastifyPluginAsync, FastifyReply } from "fastify";

export const CONSOLE_PATH = "/console";

const FILES = {
  "index.html": "text/html; charset=utf-8",
  "console.js": "text/javascript; charset=utf-8",
  "console.css": "text/css; charset=utf-8",
  "favicon.svg": "image/svg+xml",
} as const;

/** Only this origin's scripts, styles, API, WebSocket and media; no framing. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "media-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const consoleRoutes: FastifyPluginAsync = async (app) => {
  const served = new Map<string, { body: string; type: string }>();
  for (const [name, type] of Object.entries(FILES))
    served.set(name, { body: await readFile(new URL(`../console/${name}`, import.meta.url), "utf8"), type });

  const send = (name: string) => async (_request: unknown, reply: FastifyReply) => {
    const file = served.get(name);
    if (!file) throw new Error(`console file ${name} was not loaded`);
    return reply
      .header("content-type", file.type)
      .header("content-security-policy", CONTENT_SECURITY_POLICY)
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .header("cache-control", "no-cache")
      .send(file.body);
  };
  // Pages, not API: left out of the OpenAPI document.
  const page = { schema: { hide: true } };
  app.get(CONSOLE_PATH, page, send("index.html"));
  app.get(`${CONSOLE_PATH}/console.js`, page, send("console.js"));
  app.get(`${CONSOLE_PATH}/console.css`, page, send("console.css"));
  app.get(`${CONSOLE_PATH}/favicon.svg`, page, send("favicon.svg"));
};
