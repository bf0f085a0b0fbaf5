// Who may call a route is decided by the route the request matched, never by the spelling of its URL: every /v1
// route is registered inside the encapsulated plugin that adds `authenticate` as its onRequest hook (fastify runs an
// encapsulated hook for the routes matched in that context, whatever the URL looked like before decoding), and every
// handler takes its caller from `callerOf`, which refuses when there is none. Nothing defaults to the service role.
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { z } from "zod";
import type { ServiceContext } from "../context.ts";
import { ApiError, parseInput } from "../errors.ts";
import { userTokenBody, type userTokenResponse } from "../schemas.ts";
import { bearerOf, type Caller, isApiToken, signUserToken, verifyUserToken } from "../tokens.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** Set only by `authenticate`; read only through `callerOf`. */
    caller: Caller | null;
  }
  interface FastifyContextConfig {
    /**
     * The route also accepts user tokens (default: the service's API token only). Only the event stream does: a
     * user token is for reading the events of one's own conversations.
     */
    userTokens?: boolean;
    /**
     * The route also accepts `?access_token=` (browsers cannot set headers on a WebSocket). Only the event stream;
     * the query is never logged (the request log names the route, not the URL).
     */
    queryToken?: boolean;
  }
}

/** The onRequest hook of the /v1 plugin: sets `request.caller` or refuses with 401/403. */
export function authenticate(options: Pick<ServiceContext, "apiToken" | "signingKeys" | "limits">) {
  return async (request: FastifyRequest): Promise<void> => {
    const config = request.routeOptions.config;
    const fromQuery = config.queryToken ? queryToken(request) : undefined;
    const token = bearerOf(request.headers.authorization) ?? fromQuery;
    if (!token) throw new ApiError(401, "unauthorized", "missing Authorization: Bearer <token>");
    if (isApiToken(options.apiToken, token)) {
      request.caller = { kind: "service" };
      return;
    }
    const user = verifyUserToken(token, {
      keys: options.signingKeys,
      maxTtlSeconds: options.limits.userTokenMaxTtlSeconds,
    });
    if (!user.ok) throw new ApiError(401, "unauthorized", `the token is not valid (${user.reason})`);
    if (!config.userTokens)
      throw new ApiError(403, "forbidden", "a user token may only open the event stream (/v1/events)");
    request.caller = { kind: "user", userId: user.userId };
  };
}

/** The authenticated caller; a handler that runs without one refuses (401) instead of guessing. */
export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw new ApiError(401, "unauthorized", "this route requires a token");
  return request.caller;
}

/** The caller, who must hold the service's API token. */
export function serviceCallerOf(request: FastifyRequest): Caller & { kind: "service" } {
  const caller = callerOf(request);
  if (caller.kind !== "service")
    throw new ApiError(403, "forbidden", "this route requires the service's API token");
  return caller;
}

function queryToken(request: FastifyRequest): string | undefined {
  const query = request.query as Record<string, unknown> | undefined;
  const value = query?.access_token;
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** POST /v1/user-tokens: the service mints a short-lived token with which an end user opens the event stream. */
export const userTokenRoutes: FastifyPluginAsync<ServiceContext> = async (app, context) => {
  app.post("/user-tokens", async (request): Promise<z.infer<typeof userTokenResponse>> => {
    serviceCallerOf(request);
    const body = parseInput(userTokenBody, request.body, "body");
    const expiresAt =
      Math.floor(Date.now() / 1000) + (body.ttl_seconds ?? context.limits.userTokenTtlSeconds);
    return { token: signUserToken(context.signingKey, body.user_id, expiresAt), expires_at: expiresAt };
  });
};
