// The API's request and response shapes, defined once: each route declares them as its `schema` (fastify validates
// requests and serializes responses with them through fastify-type-provider-zod) and the OpenAPI document is
// generated from those route schemas (openapi.ts), so the two cannot drift. Objects are strict: an unknown field is
// a 400.
import { z } from "zod";
import type { BridgeEvent, MessageContent } from "../core/events.ts";
import {
  audioContentSchema,
  fileContentSchema,
  imageContentSchema,
  textContentSchema,
  videoContentSchema,
} from "../core/events.ts";
import { THUMBNAIL_SIZES, type ThumbnailSize } from "../core/media.ts";
import { parseMxc } from "../matrix/media.ts";
import type { LoggedEvent } from "../store/store.ts";

const id = (what: string) =>
  z
    .string({ error: `expected ${what} (a string)` })
    .min(1, { error: `expected ${what}` })
    .max(255, {
      error: "must be at most 255 characters",
    });
const conversationId = id("a conversation id");
const userId = id("a Nova user id");
const clientMessageId = id("a client message id (the idempotency key)");
const messageId = z
  .string({ error: "expected a message id" })
  .regex(/^\$[^/]+$/, { error: "expected a message id as returned by the API ($...)" });

export const createConversationBody = z.strictObject({
  conversation_id: conversationId,
  kind: z.enum(["dm", "group"], { error: 'expected "dm" or "group"' }),
  members: z.array(userId, { error: "expected a list of Nova user ids" }).min(1).max(1000),
  name: z.string().min(1).max(255).optional(),
});
export const conversationResponse = z.object({ conversation_id: z.string(), room_id: z.string() });

export const conversationParams = z.strictObject({ conversation_id: conversationId });
export const memberParams = z.strictObject({ conversation_id: conversationId, user_id: userId });
export const messageParams = z.strictObject({ conversation_id: conversationId, message_id: messageId });
export const addMemberBody = z.strictObject({ user_id: userId });

/** `sender_id`: required with the service token; with a user token, the token's user (or absent). */
const senderId = userId.optional();

export const sendTextBody = z.strictObject({
  sender_id: senderId,
  text: z.string({ error: "expected a string" }).min(1, { error: "must not be empty" }).max(65_536, {
    error: "must be at most 65536 characters",
  }),
  client_message_id: clientMessageId,
});

const decimal = (what: string) =>
  z
    .string()
    .regex(/^\d{1,12}$/, { error: `expected ${what} (a non-negative integer)` })
    .transform(Number);

export const sendAudioQuery = z.strictObject({
  sender_id: userId,
  client_message_id: clientMessageId,
  duration_ms: decimal("a duration in milliseconds").optional(),
});

/** POST /v1/conversations/{id}/media: the file is the raw body; who sends it, and its key, in the query. */
export const sendMediaQuery = z.strictObject({
  /** Required with the service token; with a user token, the token's user (or absent). */
  sender_id: userId.optional(),
  client_message_id: clientMessageId,
  /** Shown as the message's body; default `<kind>.<ext>` from the detected type. */
  filename: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[^/\\]+$/, { error: "must not contain slashes" })
    .optional(),
  /** For audio and video whose container does not say (the bytes win when they do). */
  duration_ms: decimal("a duration in milliseconds").optional(),
});

export const mediaParams = z.strictObject({
  server_name: z
    .string()
    .regex(/^[A-Za-z0-9.:[\]-]{1,255}$/, { error: "expected the server name of an mxc:// URI" }),
  media_id: z.string().regex(/^[A-Za-z0-9_-]{1,255}$/, { error: "expected the media id of an mxc:// URI" }),
});
export const thumbnailParams = mediaParams.extend({
  size: z.enum(Object.keys(THUMBNAIL_SIZES) as [ThumbnailSize, ...ThumbnailSize[]], {
    error: `expected one of ${Object.keys(THUMBNAIL_SIZES).join(", ")}`,
  }),
});
/** A browser's <img>/<audio>/<video> cannot send headers: the user token may come as `?access_token=`. */
export const mediaQuery = z.strictObject({ access_token: z.string().optional() });

/** The bridge's route for an mxc:// URI (relative to the bridge's base URL, as a front end reaches it). */
export function mediaPath(mxcUri: string): string | undefined {
  const parts = parseMxc(mxcUri);
  return parts && `/v1/media/${encodeURIComponent(parts.serverName)}/${encodeURIComponent(parts.mediaId)}`;
}

const mediaUrl = {
  /** The bridge's media route for `url` (relative to the bridge's base URL; add `?access_token=` in a browser). */
  media_url: z.string(),
};
/** A message's content as the API sends it: the event's content, with the bridge's URLs beside the mxc:// URI. */
export const wireContentSchema = z.discriminatedUnion("kind", [
  textContentSchema,
  imageContentSchema.extend({
    ...mediaUrl,
    /** A thumbnail made by the homeserver (`/thumbnail/small|medium|large`; this one is `medium`). */
    thumbnail_url: z.string(),
  }),
  videoContentSchema.extend(mediaUrl),
  audioContentSchema.extend(mediaUrl),
  fileContentSchema.extend(mediaUrl),
]);
export type WireContent = z.infer<typeof wireContentSchema>;

/** The content with its bridge URLs. Pure. */
export function toWireContent(content: MessageContent): WireContent {
  if (content.kind === "text") return content;
  const path = mediaPath(content.url) ?? "";
  if (content.kind === "image")
    return { ...content, media_url: path, thumbnail_url: `${path}/thumbnail/medium` };
  return { ...content, media_url: path };
}

export const editBody = z.strictObject({
  sender_id: senderId,
  text: sendTextBody.shape.text,
  /** Optional idempotency key for the edit; without it, a retried PATCH makes a second edit. */
  client_message_id: clientMessageId.optional(),
});
export const deleteBody = z.strictObject({
  /**
   * Who deletes it: only the author may (403 otherwise). Without it, the author's ghost redacts (service token);
   * with a user token, the token's user.
   */
  sender_id: senderId,
  reason: z.string().max(1000).optional(),
  client_message_id: clientMessageId.optional(),
});

export const historyQuery = z.strictObject({
  limit: decimal("a page size")
    .pipe(z.number().int().min(1, { error: "must be at least 1" }).max(200, { error: "must be at most 200" }))
    .optional(),
  before: z.string().min(1).max(500).optional(),
});

/** GET /v1/conversations: a user token lists its own; the service names the user. */
export const conversationsQuery = z.strictObject({ user_id: userId.optional() });
export const conversationListResponse = z.object({
  conversations: z.array(z.object({ conversation_id: z.string(), kind: z.enum(["dm", "group"]) })),
});

export const userTokenBody = z.strictObject({
  user_id: userId,
  ttl_seconds: z.number().int().min(10).max(86_400).optional(),
});
export const userTokenResponse = z.object({ token: z.string(), expires_at: z.number().int() });

export const eventsQuery = z.strictObject({
  since: z
    .string()
    .regex(/^\d{1,19}$/, { error: "expected a cursor from a previous event" })
    .optional(),
  access_token: z.string().optional(),
});

/** GET /v1/events without an upgrade: one page of the log after `since` (a client catching up over HTTP). */
export const catchUpQuery = eventsQuery.extend({
  limit: decimal("a page size")
    .pipe(
      z.number().int().min(1, { error: "must be at least 1" }).max(1000, { error: "must be at most 1000" }),
    )
    .optional(),
});

/**
 * An event as the API sends it (WebSocket frames and history). `message_id` is always the message the event is
 * about, so a front end updates in place; an edit's own id is `edit_id`. `cursor` is the log position (WebSocket
 * only): reconnect with `?since=<cursor>`.
 */
export const wireEventSchema = z.object({
  type: z.enum(["message.new", "message.edited", "message.deleted"]),
  cursor: z.string().optional(),
  event_id: z.string(),
  conversation_id: z.string(),
  message_id: z.string(),
  /** The Nova author; null for a Matrix user who is not a Nova user (then `matrix_sender_id` names them). */
  sender_id: z.string().nullable(),
  matrix_sender_id: z.string().optional(),
  origin_ts: z.number().int(),
  content: wireContentSchema.optional(),
  edit_id: z.string().optional(),
  reason: z.string().nullable().optional(),
});
// Shown once in the document, as `#/components/schemas/Event`, wherever a route uses it.
wireEventSchema.register(z.globalRegistry, { id: "Event" });
export type WireEvent = z.infer<typeof wireEventSchema>;

export const messageResponse = z.object({
  message_id: z.string(),
  conversation_id: z.string(),
  sender_id: z.string(),
  client_message_id: z.string(),
  content: wireContentSchema,
});
export const editResponse = z.object({
  /** The message the edit changed. */
  message_id: z.string(),
  /** The edit's own id. */
  edit_id: z.string(),
  conversation_id: z.string(),
  sender_id: z.string(),
  content: wireContentSchema,
});
export const deletedResponse = z.object({ message_id: z.string(), deletion_id: z.string() });
export const historyResponse = z.object({
  events: z.array(wireEventSchema),
  /** Pass as `before` for the next (older) page; absent at the start of the conversation. */
  next_before: z.string().optional(),
});

export const catchUpResponse = z.object({
  /** Oldest first, each with its `cursor`; a user token sees only its conversations' events. */
  events: z.array(wireEventSchema),
  /** Pass as `since` for the next page (the last position read, also when none of it was visible). */
  next_since: z.string(),
});
export type CatchUpResponse = z.infer<typeof catchUpResponse>;

export const errorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string(), field: z.string().optional() }),
});
errorResponse.register(z.globalRegistry, { id: "Error" });

/** The core's event as the API's wire event. Pure. */
export function toWireEvent(event: BridgeEvent, cursor?: string): WireEvent {
  const common = {
    type: event.type,
    ...(cursor === undefined ? {} : { cursor }),
    event_id: event.event_id,
    conversation_id: event.conversation_id,
    sender_id: event.sender_id,
    ...(event.matrix_sender_id === undefined ? {} : { matrix_sender_id: event.matrix_sender_id }),
    origin_ts: event.origin_server_ts,
  };
  switch (event.type) {
    case "message.new":
      return { ...common, message_id: event.message_id, content: toWireContent(event.content) };
    case "message.edited":
      return {
        ...common,
        message_id: event.replaces_message_id,
        edit_id: event.message_id,
        content: toWireContent(event.content),
      };
    case "message.deleted":
      return { ...common, message_id: event.message_id, reason: event.reason };
  }
}

export const loggedToWire = (logged: LoggedEvent): WireEvent => toWireEvent(logged.event, logged.position);
