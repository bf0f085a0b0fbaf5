// Who may call a route is decided by the route the request matched, never by the spelling of its URL: every /v1
// route is registered inside the encapsulated plugin that adds `authenticate` as its onRequest hook (fastify runs an
// encapsulated hook for the routes matched in that context, whatever the URL looked like before decoding), and every
// handler takes its caller from `callerOf`, which refuses when there is none. Nothing defaults to the service role.
import type { FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { ServiceContext } from "../context.ts";
import { ApiError } from "../errors.ts";
import { errorResponses, jsonResponse } from "../openapi.ts";
import { userTokenBody, userTokenResponse } from "../schemas.ts";
import { bearerOf, type Caller, isApiToken, signUserToken, verifyUserToken } from "../tokens.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** Set only by `authenticate`; read only through `callerOf`. */
    caller: Caller | null;
  }
  interface FastifyContextConfig {
    /**
     * The route also accepts user tokens (default: the service's API token only): the routes where an end user acts
     * as themselves in their own conversations (the event stream, history, sends, edits, deletions, media).
     */
    userTokens?: boolean;
    /**
     * The route also accepts `?access_token=` (browsers cannot set headers on a WebSocket, an <img> or an
     * <audio>): the event stream and the media reads. The query is never logged (the request log names the route,
     * not the URL), and media responses carry `Referrer-Policy: no-referrer`.
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
      throw new ApiError(403, "forbidden", "this route requires the service's API token, not a user token");
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

/**
 * Who a write acts as. The service names the user (`sender_id`, required); a user token acts as its own user only
 * (`sender_id` absent or the same), so an end user can never write as someone else.
 */
export function actingUserOf(request: FastifyRequest, senderId: string | undefined): string {
  const caller = callerOf(request);
  if (caller.kind === "user") {
    if (senderId !== undefined && senderId !== caller.userId)
      throw new ApiError(403, "forbidden", "sender_id: a user token acts only as its own user", {
        field: "sender_id",
      });
    return caller.userId;
  }
  if (senderId === undefined)
    throw new ApiError(
      400,
      "invalid_request",
      "sender_id: expected a Nova user id (the service names the sender)",
      {
        field: "sender_id",
      },
    );
  return senderId;
}

/**
 * For a user token, refuses unless the user is a member of the conversation now (404 as for a conversation that
 * does not exist: a user learns nothing of conversations they are not in). The service may read any.
 */
export async function requireMember(
  request: FastifyRequest,
  members: (conversationId: string) => Promise<string[]>,
  conversationId: string,
): Promise<void> {
  const caller = callerOf(request);
  if (caller.kind === "service") return;
  const joined = await members(conversationId).catch(() => [] as string[]);
  if (!joined.includes(caller.userId))
    throw new ApiError(404, "not_found", `conversation ${conversationId} does not exist`, {
      field: "conversation_id",
    });
}

function queryToken(request: FastifyRequest): string | undefined {
  const query = request.query as Record<string, unknown> | undefined;
  const value = query?.access_token;
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** POST /v1/user-tokens: the service mints a short-lived token with which an end user opens the event stream. */
export const userTokenRoutes: FastifyPluginAsyncZod<ServiceContext> = async (app, context) => {
  app.post(
    "/user-tokens",
    {
      schema: {
        summary: "Mint a short-lived user token (service token only)",
        body: userTokenBody,
        response: { 200: jsonResponse("The token", userTokenResponse), ...errorResponses(400, 403) },
      },
    },
    async (request) => {
      serviceCallerOf(request);
      const { body } = request;
      const expiresAt =
        Math.floor(Date.now() / 1000) + (body.ttl_seconds ?? context.limits.userTokenTtlSeconds);
      return { token: signUserToken(context.signingKey, body.user_id, expiresAt), expires_at: expiresAt };
    },
  );
};
