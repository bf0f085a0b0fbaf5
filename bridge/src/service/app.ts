// The bridge's HTTP + WebSocket service (fastify), one plugin per concern (plugins/). This file builds the server:
// the shared error shape, the request log, validation and the OpenAPI document from the routes' zod schemas
// (openapi.ts), and which plugin sits in which context. Every /v1 route but the OpenAPI
// document is registered inside the one authenticated context below; nothing else may authenticate.
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import websocket from "@fastify/websocket";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import type { Bridge } from "../bridge.ts";
import type { Secret } from "../config/secret.ts";
import {
  DEFAULT_LIMITS,
  type IdleReason,
  liveBridge,
  type ServiceContext,
  type ServiceLimits,
} from "./context.ts";
import { ApiError, fromValidationError, toApiError } from "./errors.ts";
import { EventFeed } from "./event-feed.ts";
import { CLOSE_GOING_AWAY } from "./event-stream.ts";
import { ServiceMetrics } from "./metrics.ts";
import { openApiOptions } from "./openapi.ts";
import { authenticate, callerOf, userTokenRoutes } from "./plugins/auth.ts";
import { consoleRoutes } from "./plugins/console.ts";
import { conversationRoutes } from "./plugins/conversations.ts";
import { docsRoutes } from "./plugins/docs.ts";
import { eventRoutes } from "./plugins/events.ts";
import { healthRoutes, metricsRoutes } from "./plugins/health.ts";
import { mediaRoutes } from "./plugins/media.ts";
import { messageRoutes } from "./plugins/messages.ts";

export { DEFAULT_LIMITS, type ServiceLimits } from "./context.ts";

export interface ServiceOptions {
  /**
   * The started bridge. Without one the service is idle: "disabled" (MATRIX_ENABLED is not true: ready, /v1
   * answers 503) or "standby" (waiting for the sync lock: /readyz and /v1 answer 503 until {@link Service.activate}).
   */
  bridge?: Bridge;
  homeserverUrl?: string;
  idle?: IdleReason;
  apiToken: Secret;
  signingKey: Secret;
  /** During a rotation of the signing key: the previous key, still accepted (never used to sign). */
  previousSigningKey?: Secret;
  logger: Logger;
  limits?: Partial<ServiceLimits>;
  /**
   * Serve GET /metrics on the API's port too. Default true; false when a metrics port is configured, so the metrics
   * are reachable only where the scrapers and NetworkPolicies expect them.
   */
  metricsOnApiPort?: boolean;
  /** The API reference at /v1/docs and the console at /console (BRIDGE_DEV_PAGES; local and staging). */
  devPages?: boolean;
}

/** A route as fastify registered it (collected by an onRoute hook, so nothing registered can be missed). */
export interface RegisteredRoute {
  method: string;
  url: string;
  websocket: boolean;
  /** The route accepts user tokens (its `config.userTokens`); the others are the service's only. */
  userTokens: boolean;
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
  let bridge: Bridge | undefined;
  let feed: EventFeed | undefined;
  let homeserverUrl = options.homeserverUrl;
  let unsubscribe: (() => void) | undefined;
  const metrics = new ServiceMetrics(() => bridge?.syncStatus());
  const context: ServiceContext = {
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    metrics,
    logger,
    apiToken: options.apiToken,
    signingKey: options.signingKey,
    signingKeys: [options.signingKey, ...(options.previousSigningKey ? [options.previousSigningKey] : [])],
    idle: options.idle,
    bridge: () => bridge,
    homeserverUrl: () => homeserverUrl,
    feed: () => feed,
  };
  const activate = (started: Bridge, url: string | undefined) => {
    const { limits } = context;
    const startedFeed = new EventFeed({
      store: started.store,
      windowBytes: limits.wsWindowBytes,
      pageSize: limits.wsPageSize,
      pollIntervalMs: limits.wsPollIntervalMs,
      logger,
      onRead: (reader) => metrics.logReads.inc({ reader }),
    });
    unsubscribe = started.onEvents((inserted) => {
      metrics.eventsLogged.inc(inserted);
      startedFeed.wake();
    });
    feed = startedFeed;
    bridge = started;
    homeserverUrl = url;
  };
  if (options.bridge) activate(options.bridge, options.homeserverUrl);

  // Fastify's own request logging would print URLs, and a WebSocket URL may carry a user token: log here instead.
  // Path parameters up to a 255-character id, percent-encoded (find-my-way's default of 100 answered 414 for longer).
  const app = Fastify({
    logger: false,
    bodyLimit: context.limits.jsonBodyBytes,
    routerOptions: { maxParamLength: 2048 },
  });
  app.decorateRequest("caller", null);
  // Every route's `schema` is zod: requests are validated (400s in the API's shape, below) and responses serialized
  // with it, and @fastify/swagger, registered before any route, documents each route from the same schema.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(swagger, openApiOptions);
  const routes: RegisteredRoute[] = [];
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat())
      routes.push({
        method,
        url: route.url,
        websocket: route.websocket === true || route.wsHandler !== undefined,
        userTokens: route.config?.userTokens === true,
      });
  });
  // JSON only: fastify's built-in text/plain parser would turn a text body into a 400 instead of a 415.
  app.removeContentTypeParser("text/plain");
  await app.register(websocket, { options: { maxPayload: 4096 } });
  // @fastify/websocket hides its routes from the document; the event stream's is kept (its query, frames, close codes).
  app.addHook("onRoute", (route) => {
    if (route.websocket && route.schema) route.schema.hide = false;
  });

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
    const apiError = fromValidationError(error) ?? fromFastifyError(error) ?? toApiError(error);
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

  await app.register(healthRoutes, context);
  if (options.metricsOnApiPort !== false) await app.register(metricsRoutes, { metrics });
  await app.register(docsRoutes, { devPages: options.devPages === true });
  if (options.devPages) await app.register(consoleRoutes);

  // The authenticated API. Its hooks run for every route matched in this context, whatever the URL's spelling
  // (fastify decodes %76 to v before routing): authentication first, then whether a bridge is active.
  await app.register(
    async (v1) => {
      v1.addHook("onRequest", authenticate(context));
      v1.addHook("onRequest", async () => {
        liveBridge(context);
      });
      // Per token, after authentication (so the key is who the caller is, not what they claim), before validation
      // (so a flood of malformed requests is limited too).
      await v1.register(rateLimit, {
        hook: "preValidation",
        timeWindow: 60_000,
        keyGenerator: (request) => {
          const caller = callerOf(request);
          return caller.kind === "user" ? `user:${caller.userId}` : "service";
        },
        max: (request) =>
          callerOf(request).kind === "user"
            ? context.limits.userRequestsPerMinute
            : context.limits.serviceRequestsPerMinute,
        errorResponseBuilder: (_request, limit) =>
          new ApiError(
            429,
            "rate_limited",
            `too many requests for this token: at most ${limit.max} a minute; retry after the Retry-After seconds`,
            { retryAfter: Math.max(1, Math.ceil(limit.ttl / 1000)) },
          ),
      });
      await v1.register(userTokenRoutes, context);
      await v1.register(conversationRoutes, context);
      await v1.register(messageRoutes, context);
      await v1.register(mediaRoutes, context);
      await v1.register(eventRoutes, context);
    },
    { prefix: "/v1" },
  );

  return {
    app,
    routes,
    metrics,
    activate,
    async close() {
      unsubscribe?.();
      feed?.stop();
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
