// The bridge's HTTP + WebSocket service (fastify). Routes validate with the zod schemas in schemas.ts, call the
// core (Conversations, Messages, the event log) and answer errors in one shape (errors.ts).
import websocket from "@fastify/websocket";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { WebSocket } from "ws";
import type { Bridge } from "../bridge.ts";
import type { Secret } from "../config/secret.ts";
import { ConversationNotFoundError } from "../core/errors.ts";
import type { LoggedEvent } from "../store/store.ts";
import { authenticate, callerOf, serviceCallerOf } from "./auth.ts";
import { ApiError, parseInput, toApiError } from "./errors.ts";
import { CLOSE_GOING_AWAY, EventStream } from "./event-stream.ts";
import { type SendKind, ServiceMetrics, syncLagSeconds } from "./metrics.ts";
import { openApiDocument } from "./openapi.ts";
import {
  addMemberBody,
  conversationParams,
  createConversationBody,
  deleteBody,
  editBody,
  eventsQuery,
  historyQuery,
  memberParams,
  messageParams,
  sendAudioQuery,
  sendTextBody,
  toWireEvent,
  userTokenBody,
} from "./schemas.ts";
import { signUserToken } from "./tokens.ts";

export interface ServiceLimits {
  /** JSON request bodies. */
  jsonBodyBytes: number;
  /** Audio uploads (the homeserver's own limit is checked too). */
  audioBodyBytes: number;
  /** A WebSocket client whose unsent data exceeds this is closed (it resumes by cursor). */
  wsMaxBufferedBytes: number;
  /** Server pings; a client that missed the previous pong is dropped. */
  wsPingIntervalMs: number;
  /** Events read from the log per page. */
  wsPageSize: number;
  /** Poll of the log under the wake-ups. */
  wsPollIntervalMs: number;
  /** /readyz fails when the sync loop trails by more than this. */
  readyMaxLagSeconds: number;
  /** Default lifetime of user tokens minted by POST /v1/user-tokens. */
  userTokenTtlSeconds: number;
}

export const DEFAULT_LIMITS: ServiceLimits = {
  jsonBodyBytes: 256 * 1024,
  audioBodyBytes: 20 * 1024 * 1024,
  wsMaxBufferedBytes: 4 * 1024 * 1024,
  wsPingIntervalMs: 25_000,
  wsPageSize: 200,
  wsPollIntervalMs: 2_000,
  readyMaxLagSeconds: 60,
  userTokenTtlSeconds: 900,
};

export interface ServiceOptions {
  /**
   * The started bridge. Without one the service is idle: "disabled" (MATRIX_ENABLED is not true: ready, /v1
   * answers 503) or "standby" (waiting for the sync lock: /readyz and /v1 answer 503 until {@link Service.activate}).
   */
  bridge?: Bridge;
  homeserverUrl?: string;
  idle?: "disabled" | "standby";
  apiToken: Secret;
  signingKey: Secret;
  logger: Logger;
  limits?: Partial<ServiceLimits>;
}

/** A route as fastify registered it (collected by an onRoute hook, so nothing registered can be missed). */
export interface RegisteredRoute {
  method: string;
  url: string;
  websocket: boolean;
}

export interface Service {
  app: FastifyInstance;
  /** Every route fastify registered, in every plugin (the tests check each /v1 route refuses without a token). */
  routes: readonly RegisteredRoute[];
  metrics: ServiceMetrics;
  /** A standby becomes the active service (same server, same port: clients see no gap). */
  activate(bridge: Bridge, homeserverUrl: string): void;
  /** Closes the WebSocket clients (1001, going away) and the HTTP server. */
  close(): Promise<void>;
}

export async function buildService(options: ServiceOptions): Promise<Service> {
  const { logger } = options;
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  let bridge: Bridge | undefined;
  let homeserverUrl = options.homeserverUrl;
  let unsubscribe: (() => void) | undefined;
  const metrics = new ServiceMetrics(() => bridge?.syncStatus());
  const streams = new Set<EventStream>();
  const activate = (started: Bridge, url: string | undefined) => {
    bridge = started;
    homeserverUrl = url;
    unsubscribe = started.onEvents((inserted) => {
      metrics.eventsLogged.inc(inserted);
      for (const stream of streams) stream.notify();
    });
  };
  if (options.bridge) activate(options.bridge, options.homeserverUrl);
  /** The bridge, in handlers under /v1 (the onRequest hook answered 503 when there is none). */
  const live = (): Bridge => {
    if (!bridge) throw new ApiError(503, "unavailable", "the bridge is not active", { retryAfter: 5 });
    return bridge;
  };

  // Fastify's own request logging would print URLs, and a WebSocket URL may carry a user token: log here instead.
  // Path parameters up to a 255-character id, percent-encoded (find-my-way's default of 100 answered 414 for longer).
  const app = Fastify({
    logger: false,
    bodyLimit: limits.jsonBodyBytes,
    routerOptions: { maxParamLength: 2048 },
  });
  app.decorateRequest("caller", null);
  const routes: RegisteredRoute[] = [];
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat())
      routes.push({ method, url: route.url, websocket: route.websocket === true });
  });
  // JSON only: fastify's built-in text/plain parser would turn a text body into a 400 instead of a 415.
  app.removeContentTypeParser("text/plain");
  await app.register(websocket, { options: { maxPayload: 4096 } });

  app.addContentTypeParser(
    /^audio\/[a-z0-9.+-]+$/i,
    { parseAs: "buffer", bodyLimit: limits.audioBodyBytes },
    (_r, body, done) => done(null, body),
  );

  app.addHook("onResponse", async (request, reply) => {
    logger.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? "(none)",
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      "request",
    );
  });

  app.setErrorHandler((error, _request, reply) => {
    const apiError = fromFastifyError(error) ?? toApiError(error);
    if (apiError.status >= 500 && apiError.code === "internal")
      logger.error({ err: error }, "request failed");
    sendError(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new ApiError(404, "not_found", `no route ${request.method} ${request.url.split("?")[0]}`),
    ),
  );

  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    if (!bridge && options.idle === "standby") {
      reply.code(503).header("retry-after", "5");
      return { status: "standby" };
    }
    if (!bridge) return { status: "ready", matrix: "disabled" };
    const checks = await readiness(bridge, homeserverUrl, limits.readyMaxLagSeconds);
    const ready = Object.values(checks).every((check) => check === "ok");
    if (!ready) reply.code(503).header("retry-after", "5");
    return { status: ready ? "ready" : "not_ready", checks };
  });

  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // The OpenAPI document is the only /v1 route outside the authenticated context.
  const document = openApiDocument();
  app.get("/v1/openapi.json", async () => document);

  // Every other /v1 route, HTTP and WebSocket, is registered in this encapsulated context: its hooks run for the
  // routes it matched, whatever the URL's spelling (fastify decodes %76 to v before routing).
  await app.register(async (v1) => {
    v1.addHook("onRequest", authenticate(options));
    v1.addHook("onRequest", async () => {
      if (bridge) return;
      if (options.idle === "standby")
        throw new ApiError(503, "unavailable", "standby: another bridge replica is active", {
          retryAfter: 5,
        });
      throw new ApiError(
        503,
        "unavailable",
        "the Matrix integration is disabled (MATRIX_ENABLED is not true)",
        {
          retryAfter: 60,
        },
      );
    });

    v1.post("/v1/user-tokens", async (request) => {
      serviceCallerOf(request);
      const body = parseInput(userTokenBody, request.body, "body");
      const expiresAt = Math.floor(Date.now() / 1000) + (body.ttl_seconds ?? limits.userTokenTtlSeconds);
      return { token: signUserToken(options.signingKey, body.user_id, expiresAt), expires_at: expiresAt };
    });

    v1.post("/v1/conversations", async (request) => {
      serviceCallerOf(request);
      const body = parseInput(createConversationBody, request.body, "body");
      let conversation: { conversationId: string; roomId: string };
      if (body.kind === "dm") {
        if (body.members.length !== 2 || body.members[0] === body.members[1])
          throw new ApiError(400, "invalid_request", "members: a dm has exactly 2 different members", {
            field: "members",
          });
        if (body.name !== undefined)
          throw new ApiError(400, "invalid_request", "name: a dm has no name", { field: "name" });
        conversation = await live().conversations.ensureDirect(body.conversation_id, [
          body.members[0] as string,
          body.members[1] as string,
        ]);
      } else {
        conversation = await live().conversations.ensureGroup(body.conversation_id, {
          name: body.name ?? body.conversation_id,
          members: body.members,
        });
      }
      return { conversation_id: conversation.conversationId, room_id: conversation.roomId };
    });

    v1.post("/v1/conversations/:conversation_id/members", async (request, reply) => {
      serviceCallerOf(request);
      const params = parseInput(conversationParams, request.params, "path");
      const body = parseInput(addMemberBody, request.body, "body");
      await live().conversations.addMembers(params.conversation_id, [body.user_id]);
      reply.code(204);
    });

    v1.delete("/v1/conversations/:conversation_id/members/:user_id", async (request, reply) => {
      serviceCallerOf(request);
      const params = parseInput(memberParams, request.params, "path");
      await live().conversations.removeMembers(params.conversation_id, [params.user_id]);
      reply.code(204);
    });

    /** Times a send and counts its failure by kind and error code. */
    async function send<T>(kind: SendKind, run: () => Promise<T>): Promise<T> {
      const stop = metrics.sendDuration.startTimer({ kind });
      try {
        return await run();
      } catch (error) {
        const apiError = toApiError(error);
        metrics.sendErrors.inc({ kind, code: apiError.code });
        throw error;
      } finally {
        stop();
      }
    }

    v1.post("/v1/conversations/:conversation_id/messages", async (request) => {
      serviceCallerOf(request);
      const params = parseInput(conversationParams, request.params, "path");
      const body = parseInput(sendTextBody, request.body, "body");
      const sent = await send("text", () =>
        live().messages.sendText({
          conversationId: params.conversation_id,
          senderId: body.sender_id,
          text: body.text,
          idempotencyKey: body.client_message_id,
        }),
      );
      return {
        message_id: sent.messageId,
        conversation_id: params.conversation_id,
        sender_id: body.sender_id,
        client_message_id: body.client_message_id,
        content: { kind: "text", body: body.text },
      };
    });

    v1.post("/v1/conversations/:conversation_id/audio", async (request) => {
      serviceCallerOf(request);
      const params = parseInput(conversationParams, request.params, "path");
      const query = parseInput(sendAudioQuery, request.query, "query");
      const mimetype = (request.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
      if (!/^audio\/[a-z0-9.+-]+$/i.test(mimetype) || !Buffer.isBuffer(request.body))
        throw new ApiError(
          415,
          "unsupported_media_type",
          "content-type: expected an audio type (audio/...)",
          {
            field: "content-type",
          },
        );
      const audio = request.body;
      const sent = await send("audio", () =>
        live().messages.sendAudio({
          conversationId: params.conversation_id,
          senderId: query.sender_id,
          audio,
          mimetype,
          idempotencyKey: query.client_message_id,
          ...(query.duration_ms === undefined ? {} : { durationMs: query.duration_ms }),
        }),
      );
      return {
        message_id: sent.messageId,
        conversation_id: params.conversation_id,
        sender_id: query.sender_id,
        client_message_id: query.client_message_id,
        content: {
          kind: "audio",
          body: `audio.${mimetype.split("/")[1]?.replace(/^x-/, "") ?? "bin"}`,
          url: sent.url ?? "",
          mimetype,
          size: audio.byteLength,
          duration_ms: query.duration_ms ?? null,
        },
      };
    });

    v1.patch("/v1/conversations/:conversation_id/messages/:message_id", async (request) => {
      serviceCallerOf(request);
      const params = parseInput(messageParams, request.params, "path");
      const body = parseInput(editBody, request.body, "body");
      const key = body.client_message_id ?? `edit.${crypto.randomUUID()}`;
      const sent = await send("edit", () =>
        live().messages.edit({
          conversationId: params.conversation_id,
          senderId: body.sender_id,
          messageId: params.message_id,
          text: body.text,
          idempotencyKey: key,
        }),
      );
      return {
        message_id: params.message_id,
        edit_id: sent.messageId,
        conversation_id: params.conversation_id,
        sender_id: body.sender_id,
        content: { kind: "text", body: body.text },
      };
    });

    v1.delete("/v1/conversations/:conversation_id/messages/:message_id", async (request) => {
      serviceCallerOf(request);
      const params = parseInput(messageParams, request.params, "path");
      const body = parseInput(deleteBody, request.body ?? {}, "body");
      const key = body.client_message_id ?? `delete.${params.message_id}`;
      const deleted = await send("delete", () =>
        live().messages.delete({
          conversationId: params.conversation_id,
          senderId: body.sender_id,
          messageId: params.message_id,
          idempotencyKey: key,
          ...(body.reason === undefined ? {} : { reason: body.reason }),
        }),
      );
      return { message_id: params.message_id, deletion_id: deleted.redactionId };
    });

    v1.get("/v1/conversations/:conversation_id/messages", async (request) => {
      serviceCallerOf(request);
      const params = parseInput(conversationParams, request.params, "path");
      const query = parseInput(historyQuery, request.query, "query");
      const page = await live().messages.history(params.conversation_id, {
        ...(query.limit === undefined ? {} : { limit: query.limit }),
        ...(query.before === undefined ? {} : { before: query.before }),
      });
      return {
        events: page.events.map((event) => toWireEvent(event)),
        ...(page.nextCursor ? { next_before: page.nextCursor } : {}),
      };
    });

    // The WebSocket: validated before the upgrade (a bad request gets an HTTP error, not a socket).
    v1.get(
      "/v1/events",
      {
        websocket: true,
        config: { userTokens: true, queryToken: true },
        preValidation: async (request: FastifyRequest) => {
          callerOf(request);
          parseInput(eventsQuery, request.query, "query");
        },
      },
      (socket: WebSocket, request: FastifyRequest) => {
        const query = parseInput(eventsQuery, request.query, "query");
        const caller = callerOf(request);
        const role = caller.kind;
        metrics.wsClients.inc({ role });
        const stream = new EventStream({
          socket,
          readAfter: (cursor, limit) => live().store.readAfter(cursor, limit),
          ...(caller.kind === "user" ? { filter: membershipFilter(live(), caller.userId) } : {}),
          since: query.since,
          maxBufferedBytes: limits.wsMaxBufferedBytes,
          pageSize: limits.wsPageSize,
          pollIntervalMs: limits.wsPollIntervalMs,
          logger,
        });
        streams.add(stream);
        const stopPing = keepAlive(socket, limits.wsPingIntervalMs);
        socket.once("close", () => {
          streams.delete(stream);
          stopPing();
          metrics.wsClients.dec({ role });
        });
        void stream.run();
      },
    );
  });

  return {
    app,
    routes,
    metrics,
    activate,
    async close() {
      unsubscribe?.();
      for (const client of app.websocketServer?.clients ?? [])
        client.close(CLOSE_GOING_AWAY, "server shutting down");
      await app.close();
    },
  };
}

function sendError(reply: FastifyReply, error: ApiError): void {
  if (error.retryAfter !== undefined) reply.header("retry-after", String(error.retryAfter));
  reply.code(error.status).send(error.body());
}

/** Fastify's own errors (body too large, bad JSON, no parser for the content type) in the API's shape. */
function fromFastifyError(error: unknown): ApiError | undefined {
  if (error instanceof ApiError) return error;
  const status = (error as { statusCode?: number }).statusCode;
  const message = (error as Error).message;
  if (status === 413)
    return new ApiError(413, "payload_too_large", "the request body is too large", { field: "body" });
  if (status === 415)
    return new ApiError(415, "unsupported_media_type", `content-type: not accepted here (${message})`, {
      field: "content-type",
    });
  if (status === 400) return new ApiError(400, "invalid_request", `body: ${message}`, { field: "body" });
  return undefined;
}

/** Drops a client that did not answer the previous ping (a dead peer behind a load balancer). */
function keepAlive(socket: WebSocket, intervalMs: number): () => void {
  let alive = true;
  socket.on("pong", () => {
    alive = true;
  });
  const timer = setInterval(() => {
    if (!alive) {
      socket.terminate();
      return;
    }
    alive = false;
    socket.ping();
  }, intervalMs);
  return () => clearInterval(timer);
}

/** The events of conversations the user is a member of now (checked per page, at delivery time). */
function membershipFilter(bridge: Bridge, userId: string) {
  return async (events: LoggedEvent[]): Promise<LoggedEvent[]> => {
    const conversations = [...new Set(events.map((e) => e.event.conversation_id))];
    const allowed = new Set<string>();
    for (const conversationId of conversations) {
      try {
        if ((await bridge.conversations.members(conversationId)).includes(userId))
          allowed.add(conversationId);
      } catch (error) {
        if (!(error instanceof ConversationNotFoundError)) throw error;
      }
    }
    return events.filter((e) => allowed.has(e.event.conversation_id));
  };
}

type Check = "ok" | string;

async function readiness(
  bridge: Bridge,
  homeserverUrl: string | undefined,
  maxLagSeconds: number,
): Promise<Record<"synapse" | "postgres" | "sync", Check>> {
  const synapse = homeserverUrl
    ? fetch(`${homeserverUrl}/_matrix/client/versions`, { signal: AbortSignal.timeout(2000) }).then(
        (response) => (response.ok ? "ok" : `HTTP ${response.status}`),
        () => "unreachable",
      )
    : Promise.resolve("ok");
  const postgres = withTimeout(bridge.store.syncToken(), 2000).then(
    () => "ok",
    () => "unreachable",
  );
  const status = bridge.syncStatus();
  const lag = syncLagSeconds(status);
  const sync = !status.running
    ? "not running"
    : !status.caughtUp
      ? "catching up"
      : lag > maxLagSeconds
        ? `lagging ${Math.round(lag)}s`
        : "ok";
  return { synapse: await synapse, postgres: await postgres, sync };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error("timeout")), ms).unref()),
  ]);
}
