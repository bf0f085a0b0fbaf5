// The event stream: a WebSocket per client (a service token sees every event, a user token only its conversations').
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { WebSocket } from "ws";
import type { Bridge } from "../../bridge.ts";
import { ConversationNotFoundError } from "../../core/errors.ts";
import { CursorExpiredError, type LoggedEvent } from "../../store/store.ts";
import { liveBridge, liveFeed, type ServiceContext } from "../context.ts";
import { ApiError } from "../errors.ts";
import {
  CLOSE_CURSOR_EXPIRED,
  CLOSE_GOING_AWAY,
  CLOSE_INTERNAL,
  CLOSE_POLICY_VIOLATION,
  CLOSE_SLOW_CONSUMER,
  CLOSE_TOO_MANY_FOR_USER,
  CLOSE_TRY_AGAIN_LATER,
  cursorExpiredReason,
  EventStream,
} from "../event-stream.ts";
import { errorResponses, jsonResponse } from "../openapi.ts";
import { catchUpQuery, catchUpResponse, eventsQuery, loggedToWire, wireEventSchema } from "../schemas.ts";
import { callerOf } from "./auth.ts";

/** The route's description: how the socket behaves, with the close codes a client acts on, and the HTTP page. */
const DESCRIPTION = [
  "WebSocket (GET with Upgrade): one Event per text frame, everything after ?since=<cursor> then live. A service",
  "token sees every event, a user token only its conversations' (membership checked at delivery); a user's stream",
  "without since starts at the present. The token may come as ?access_token= (a browser's WebSocket cannot send",
  "headers). A bad query or token is refused before the upgrade (HTTP 400/401); `limit` is for the HTTP page only.",
  "The server pings; a peer that does not answer is dropped. Close codes:",
  `${CLOSE_SLOW_CONSUMER} slow consumer (the reason names the cursor: reconnect with ?since=<it>);`,
  `${CLOSE_CURSOR_EXPIRED} since lies before what the log keeps (reload history, reconnect without since);`,
  `${CLOSE_TOO_MANY_FOR_USER} too many connections for this user (close another one);`,
  `${CLOSE_TRY_AGAIN_LATER} the process is at capacity (reconnect later, with backoff, and ?since=<last cursor>);`,
  `${CLOSE_INTERNAL} the event log is unavailable (reconnect with ?since=<last cursor>);`,
  `${CLOSE_GOING_AWAY} the server is shutting down (reconnect, to another replica, with ?since=<last cursor>);`,
  `${CLOSE_POLICY_VIOLATION} no authenticated caller.`,
  "Without an upgrade: one page of the same events after ?since (catching up over HTTP), 410 `cursor_expired`",
  "for a cursor before what the log keeps.",
].join(" ");

export const eventRoutes: FastifyPluginAsyncZod<ServiceContext> = async (app, context) => {
  const { limits, metrics, logger } = context;
  /** Open sockets per user (entries removed at zero, so the map is bounded by the open sockets). */
  const perUser = new Map<string, number>();
  let open = 0;

  // One route, two ways to read the log: a WebSocket (upgrade) streams it; a plain GET answers one page of it (a
  // client catching up over HTTP). Validated before the upgrade: a bad request gets an HTTP error, not a socket.
  app.route({
    method: "GET",
    url: "/events",
    config: { userTokens: true, queryToken: true },
    // One schema for both (the page's query; the socket's is the same without `limit`, refused below).
    schema: {
      summary: "The event stream (WebSocket), or one page of it without an upgrade. User token.",
      description: DESCRIPTION,
      querystring: catchUpQuery,
      response: {
        101: jsonResponse("Switching protocols; each text frame is an Event", wireEventSchema),
        200: jsonResponse("A page of the log (no upgrade)", catchUpResponse),
        ...errorResponses(400, 410),
      },
    },
    preValidation: async (request) => {
      callerOf(request);
      const unknown = request.ws
        ? Object.keys(request.query ?? {}).find((key) => !(key in eventsQuery.shape))
        : undefined;
      if (unknown !== undefined)
        throw new ApiError(
          400,
          "invalid_request",
          `${unknown}: unknown field (accepted fields are documented in /v1/openapi.json)`,
          {
            field: unknown,
          },
        );
    },
    handler: async (request) => {
      const caller = callerOf(request);
      const { query } = request;
      const bridge = liveBridge(context);
      const feed = liveFeed(context);
      await feed.assertKept(query.since);
      // As on the WebSocket, a user without a cursor starts at the present.
      const since = query.since ?? (caller.kind === "user" ? await feed.head() : undefined);
      const page = await feed.read(since, query.limit ?? limits.wsPageSize);
      const visible = caller.kind === "user" ? await membershipFilter(bridge, caller.userId)(page) : page;
      return { events: visible.map(loggedToWire), next_since: page.at(-1)?.position ?? since ?? "0" };
    },
    wsHandler: async (socket, request) => {
      let caller: ReturnType<typeof callerOf>;
      try {
        caller = callerOf(request);
      } catch {
        socket.close(CLOSE_POLICY_VIOLATION, "unauthorized");
        return;
      }
      // Caps, answered with a close code a client can act on (a browser cannot read a refused upgrade's status).
      if (open >= limits.wsMaxConnections) {
        metrics.wsRefused.inc({ reason: "process_cap" });
        socket.close(CLOSE_TRY_AGAIN_LATER, "server at capacity: reconnect later with ?since=<last cursor>");
        return;
      }
      const userId = caller.kind === "user" ? caller.userId : undefined;
      if (userId !== undefined && (perUser.get(userId) ?? 0) >= limits.wsMaxPerUser) {
        metrics.wsRefused.inc({ reason: "user_cap" });
        socket.close(
          CLOSE_TOO_MANY_FOR_USER,
          `too many connections for this user (at most ${limits.wsMaxPerUser}): close another one`,
        );
        return;
      }
      const { query } = request;
      const bridge = liveBridge(context);
      const feed = liveFeed(context);
      const role = caller.kind;
      open++;
      if (userId !== undefined) perUser.set(userId, (perUser.get(userId) ?? 0) + 1);
      metrics.wsClients.inc({ role });
      const stopPing = keepAlive(socket, limits.wsPingIntervalMs);
      // Registered before anything is awaited, so a socket that closes early is still counted out.
      socket.once("close", () => {
        open--;
        stopPing();
        metrics.wsClients.dec({ role });
        if (userId !== undefined) {
          const left = (perUser.get(userId) ?? 1) - 1;
          if (left > 0) perUser.set(userId, left);
          else perUser.delete(userId);
        }
      });
      // A client's cursor from before what the log keeps is refused at once (whatever the feed's window still holds).
      try {
        if (query.since !== undefined) await feed.assertKept(query.since);
      } catch (error) {
        if (!(error instanceof CursorExpiredError)) throw error;
        socket.close(CLOSE_CURSOR_EXPIRED, cursorExpiredReason(error.cursor));
        return;
      }
      // A user's stream without a cursor starts at the present (what came before is history, per conversation).
      const since = query.since ?? (userId !== undefined ? await feed.head() : undefined);
      if (socket.readyState !== socket.OPEN) return;
      void new EventStream({
        socket,
        feed,
        ...(caller.kind === "user" ? { filter: membershipFilter(bridge, caller.userId) } : {}),
        since,
        maxBufferedBytes: limits.wsMaxBufferedBytes,
        pageSize: limits.wsPageSize,
        logger,
      }).run();
    },
  });
};

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
  return async <T extends LoggedEvent>(events: T[]): Promise<T[]> => {
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
