// The runbook's post-deploy checks, run against a deployment from its stack outputs (`pulumi stack output --json
// --show-secrets`): Synapse answers, the appservice token works inside and is refused through the public entry, and
// through the bridge a throwaway conversation gets a message that arrives on the WebSocket and is then deleted.
// One line per step with its time; the first failure stops the run. No secret is ever printed.
import { randomBytes } from "node:crypto";
import type { StackOutputs } from "@nova-matrix/contracts";

export interface VerifyOptions {
  /** Where to reach Synapse's client API and the bridge from here (a port forward); default: the outputs' URLs. */
  homeserverUrl?: string;
  bridgeUrl?: string;
  /** Per request, and for an event to arrive on the WebSocket. */
  timeoutMs?: number;
  log: (line: string) => void;
}

class StepFailed extends Error {}
const fail = (message: string): never => {
  throw new StepFailed(message);
};

interface Answer {
  status: number;
  body: unknown;
}

async function request(
  url: string,
  options: { method?: string; token?: string; json?: unknown; timeoutMs: number },
): Promise<Answer> {
  const response = await fetch(url, {
    method: options.method ?? "GET",
    headers: {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.json === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(options.json === undefined ? {} : { body: JSON.stringify(options.json) }),
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  const text = await response.text();
  try {
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  } catch {
    return { status: response.status, body: text };
  }
}

/** The answer's status, or a failure naming the call and what came back (its error code, never a token). */
function expectStatus(answer: Answer, status: number, what: string): Answer {
  if (answer.status === status) return answer;
  const code = (answer.body as { errcode?: unknown; error?: { code?: unknown } } | undefined) ?? {};
  const reason = typeof code === "object" ? (code.errcode ?? code.error?.code) : undefined;
  return fail(`${what}: HTTP ${answer.status}${reason ? ` (${String(reason)})` : ""}, expected ${status}`);
}

/** A WebSocket's frames, waited for by predicate (Node's own WebSocket: the token goes as `?access_token=`). */
function openStream(url: URL, timeoutMs: number) {
  const socket = new WebSocket(url);
  const frames: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  socket.addEventListener("message", (event) => {
    frames.push(JSON.parse(String(event.data)) as Record<string, unknown>);
    for (const wake of waiters) wake();
  });
  const opened = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new StepFailed(`${url.pathname}: not open after ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.addEventListener(
      "open",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
    socket.addEventListener(
      "error",
      () => {
        clearTimeout(timer);
        reject(new StepFailed(`${url.pathname}: the upgrade failed`));
      },
      { once: true },
    );
  });
  const waitFor = (describe: string, match: (frame: Record<string, unknown>) => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!frames.some(match)) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new StepFailed(`${describe} did not arrive within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return { opened, waitFor, close: () => socket.close() };
}

/** Runs every step in order; false at the first failure (its line says what failed). */
export async function verifyDeployment(outputs: StackOutputs, options: VerifyOptions): Promise<boolean> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const homeserver = (options.homeserverUrl ?? outputs.homeserverUrl).replace(/\/$/, "");
  const publicBase = outputs.publicBaseUrl?.replace(/\/$/, "");
  const bridgeBase = (options.bridgeUrl ?? outputs.bridgeUrl)?.replace(/\/$/, "");
  const whoamiPath = `/_matrix/client/v3/account/whoami?user_id=${encodeURIComponent(outputs.serviceUser)}`;
  const line = (status: string, name: string, detail: string) => options.log(`${status} ${name}: ${detail}`);

  async function step(name: string, run: () => Promise<string>): Promise<void> {
    const started = performance.now();
    try {
      const detail = await run();
      line("ok  ", name, `${detail} (${Math.round(performance.now() - started)} ms)`);
    } catch (error) {
      // fetch's own error says only "fetch failed": the cause (ECONNREFUSED, a DNS error) says what to fix.
      const cause =
        error instanceof Error ? (error.cause as { code?: unknown } | undefined)?.code : undefined;
      const reason = `${error instanceof Error ? error.message : String(error)}${cause ? ` (${String(cause)})` : ""}`;
      line("FAIL", name, `${reason} (${Math.round(performance.now() - started)} ms)`);
      throw new StepFailed(reason);
    }
  }
  const skip = (name: string, reason: string) => line("skip", name, reason);

  try {
    await step("synapse health", async () => {
      const answer = expectStatus(await request(`${homeserver}/health`, { timeoutMs }), 200, "GET /health");
      return `GET /health answered ${String(answer.body)}`;
    });
    await step("synapse client versions", async () => {
      const answer = expectStatus(
        await request(`${homeserver}/_matrix/client/versions`, { timeoutMs }),
        200,
        "GET /_matrix/client/versions",
      );
      const versions = (answer.body as { versions?: unknown }).versions;
      if (!Array.isArray(versions) || versions.length === 0) fail("no versions in the answer");
      return `${(versions as unknown[]).length} spec versions`;
    });
    await step("appservice token inside", async () => {
      const answer = expectStatus(
        await request(`${homeserver}${whoamiPath}`, { token: outputs.accessToken, timeoutMs }),
        200,
        "whoami with the appservice token",
      );
      const userId = (answer.body as { user_id?: unknown }).user_id;
      if (userId !== outputs.serviceUser)
        fail(`whoami answered ${String(userId)}, not ${outputs.serviceUser}`);
      return `whoami is ${outputs.serviceUser}`;
    });
    if (publicBase) {
      await step("well-known", async () => {
        const answer = expectStatus(
          await request(`${publicBase}/.well-known/matrix/client`, { timeoutMs }),
          200,
          "GET /.well-known/matrix/client",
        );
        const baseUrl = (answer.body as { "m.homeserver"?: { base_url?: unknown } })["m.homeserver"]
          ?.base_url;
        if (typeof baseUrl !== "string" || baseUrl.replace(/\/$/, "") !== publicBase)
          fail(`m.homeserver.base_url is ${String(baseUrl)}, expected ${publicBase}`);
        return `m.homeserver is ${publicBase}`;
      });
      await step("appservice token refused publicly", async () => {
        const answer = await request(`${publicBase}${whoamiPath}`, { token: outputs.accessToken, timeoutMs });
        if (answer.status < 400) fail(`whoami through ${publicBase} answered HTTP ${answer.status}`);
        return `whoami through ${publicBase} refused (HTTP ${answer.status})`;
      });
    } else {
      skip("well-known", "the stack has no publicBaseUrl (no public entry)");
      skip("appservice token refused publicly", "the stack has no publicBaseUrl (no public entry)");
    }

    if (!bridgeBase || !outputs.bridgeApiToken) {
      skip("bridge", "the stack deploys no bridge (no bridgeUrl / bridgeApiToken output)");
      return true;
    }
    const apiToken = outputs.bridgeApiToken;
    await step("bridge ready", async () => {
      // Just after a rollout the new pod may still be catching up (503 with its sync lag): wait, up to the timeout.
      const deadline = performance.now() + timeoutMs;
      let answer = await request(`${bridgeBase}/readyz`, { timeoutMs });
      while (answer.status !== 200 && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        answer = await request(`${bridgeBase}/readyz`, { timeoutMs });
      }
      if (answer.status !== 200) {
        const body = (answer.body ?? {}) as { status?: unknown; checks?: Record<string, unknown> };
        const failing = Object.entries(body.checks ?? {}).filter(([, check]) => check !== "ok");
        fail(
          `GET /readyz: HTTP ${answer.status} for ${timeoutMs} ms (${String(body.status)}` +
            `${failing.map(([name, check]) => `; ${name}: ${String(check)}`).join("")})`,
        );
      }
      return "GET /readyz answered 200";
    });
    await step("bridge refuses no token", async () => {
      expectStatus(
        await request(`${bridgeBase}/v1/conversations`, { timeoutMs }),
        401,
        "GET /v1/conversations",
      );
      return "GET /v1/conversations without a token answered 401";
    });
    const run = `verify-${new Date().toISOString().replace(/\D/g, "").slice(0, 14)}-${randomBytes(3).toString("hex")}`;
    const sender = "nova-verify";
    const api = (method: string, path: string, json?: unknown) =>
      request(`${bridgeBase}${path}`, { method, token: apiToken, json, timeoutMs });
    await step("throwaway conversation", async () => {
      expectStatus(
        await api("POST", "/v1/conversations", {
          conversation_id: run,
          kind: "group",
          members: [sender],
          name: `npm run verify ${run}`,
        }),
        200,
        "POST /v1/conversations",
      );
      return `conversation ${run} with ${sender}`;
    });
    // The verify user's own stream: a user's stream starts at the head, so it carries only what happens from here.
    let stream: ReturnType<typeof openStream> | undefined;
    try {
      await step("event stream", async () => {
        const answer = expectStatus(
          await api("POST", "/v1/user-tokens", { user_id: sender, ttl_seconds: 600 }),
          200,
          "POST /v1/user-tokens",
        );
        const url = new URL(`${bridgeBase.replace(/^http/, "ws")}/v1/events`);
        url.searchParams.set("access_token", (answer.body as { token: string }).token);
        stream = openStream(url, timeoutMs);
        await stream.opened;
        return `GET /v1/events open as ${sender}`;
      });
      let messageId = "";
      await step("message sent and received", async () => {
        const answer = expectStatus(
          await api("POST", `/v1/conversations/${run}/messages`, {
            sender_id: sender,
            text: `npm run verify ${run}`,
            client_message_id: run,
          }),
          200,
          "POST /v1/conversations/{id}/messages",
        );
        messageId = String((answer.body as { message_id?: unknown }).message_id);
        await stream?.waitFor(
          "message.new",
          (frame) => frame.type === "message.new" && frame.message_id === messageId,
        );
        return `message ${messageId} arrived on the WebSocket`;
      });
      await step("message deleted", async () => {
        expectStatus(
          await api("DELETE", `/v1/conversations/${run}/messages/${encodeURIComponent(messageId)}`, {
            sender_id: sender,
            reason: "npm run verify",
          }),
          200,
          "DELETE /v1/conversations/{id}/messages/{message_id}",
        );
        await stream?.waitFor(
          "message.deleted",
          (frame) => frame.type === "message.deleted" && frame.message_id === messageId,
        );
        return "message.deleted arrived on the WebSocket";
      });
    } finally {
      stream?.close();
    }
    return true;
  } catch (error) {
    if (error instanceof StepFailed) return false;
    throw error;
  }
}
