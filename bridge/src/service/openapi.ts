// The OpenAPI 3.1 document, generated from the same zod schemas the routes validate with (schemas.ts).
import { z } from "zod";
import {
  addMemberBody,
  catchUpQuery,
  catchUpResponse,
  conversationListResponse,
  conversationResponse,
  conversationsQuery,
  createConversationBody,
  deleteBody,
  deletedResponse,
  editBody,
  editResponse,
  errorResponse,
  historyQuery,
  historyResponse,
  mediaQuery,
  messageResponse,
  sendAudioQuery,
  sendMediaQuery,
  sendTextBody,
  userTokenBody,
  userTokenResponse,
  wireEventSchema,
} from "./schemas.ts";

type JsonSchema = Record<string, unknown>;

const json = (schema: z.ZodType, io: "input" | "output"): JsonSchema => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as JsonSchema;
  return rest;
};

/** Query parameters from a strict object schema: one parameter per property. */
function queryParameters(schema: z.ZodObject): JsonSchema[] {
  const jsonSchema = json(schema, "input") as {
    properties?: Record<string, JsonSchema>;
    required?: string[];
  };
  return Object.entries(jsonSchema.properties ?? {}).map(([name, property]) => ({
    name,
    in: "query",
    required: jsonSchema.required?.includes(name) ?? false,
    schema: property,
  }));
}

const pathParameter = (name: string) => ({ name, in: "path", required: true, schema: { type: "string" } });

const ERROR_STATUSES: Record<string, string> = {
  "400": "Malformed or invalid request; `error.field` names the field.",
  "401": "Missing or invalid token.",
  "403": "The token may not do this, or the sender is not the message's author (`forbidden`).",
  "404": "Unknown conversation or message.",
  "409":
    "`conflict`: the conversation exists with another kind or other members. `idempotency_key_reused`: this " +
    "sender already used the client_message_id for another conversation, kind or content (`error.field` says which).",
  "410":
    "`cursor_expired`: `since` lies before what the event log keeps (pruned after its retention); reload history, " +
    "then resume without `since` (from the head).",
  "413": "Body too large.",
  "415": "Not an accepted content type.",
  "429": "Rate limited; see Retry-After.",
  "503": "Homeserver unavailable or integration disabled; see Retry-After.",
};

function errors(...statuses: string[]): Record<string, unknown> {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: ERROR_STATUSES[status],
        content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
      },
    ]),
  );
}

const jsonBody = (schema: z.ZodType) => ({
  required: true,
  content: { "application/json": { schema: json(schema, "input") } },
});
const ok = (description: string, schema?: z.ZodType) => ({
  description,
  ...(schema ? { content: { "application/json": { schema: json(schema, "output") } } } : {}),
});
const SEND_ERRORS = ["400", "401", "403", "404", "409", "413", "429", "503"];

export function openApiDocument(): JsonSchema {
  const conversation = pathParameter("conversation_id");
  const message = pathParameter("message_id");
  return {
    openapi: "3.1.0",
    info: {
      title: "nova-matrix bridge",
      version: "1",
      description:
        "Conversations, messages and attachments (image, video, audio, file) on Nova's Matrix homeserver, their " +
        "media, and a WebSocket push of message.new / message.edited / message.deleted. Services authenticate with " +
        "`Authorization: Bearer <bridge API token>` and name the acting user (`sender_id`). End users hold a user " +
        "token: `v1.<base64url(JSON {sub, exp})>.<base64url(HMAC-SHA256(signing key, 'v1.' + payload))>` (exp in " +
        "unix seconds), minted by realtime-chat-service or by POST /v1/user-tokens; with it they act as themselves " +
        "only, in their own conversations (routes marked 'user token'). The event stream and media reads also take " +
        "it as `?access_token=` (a browser's WebSocket, <img>, <audio> and <video> cannot send headers).",
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: { Error: json(errorResponse, "output"), Event: json(wireEventSchema, "output") },
    },
    security: [{ bearer: [] }],
    paths: {
      "/v1/conversations": {
        get: {
          summary: "A user's conversations (user token: its own; service token: ?user_id=). User token.",
          parameters: queryParameters(conversationsQuery),
          responses: {
            "200": ok("The conversations", conversationListResponse),
            ...errors("400", "401", "403", "503"),
          },
        },
        post: {
          summary:
            "Create a conversation (idempotent by conversation_id). User token: only one it is a member of, only new.",
          requestBody: jsonBody(createConversationBody),
          responses: {
            "200": ok("The conversation", conversationResponse),
            ...errors("400", "401", "403", "409", "413", "503"),
          },
        },
      },
      "/v1/conversations/{conversation_id}/members": {
        post: {
          summary: "Add a member to a group conversation",
          parameters: [conversation],
          requestBody: jsonBody(addMemberBody),
          responses: { "204": ok("Added"), ...errors("400", "401", "403", "404", "409", "503") },
        },
      },
      "/v1/conversations/{conversation_id}/members/{user_id}": {
        delete: {
          summary: "Remove a member from a group conversation",
          parameters: [conversation, pathParameter("user_id")],
          responses: { "204": ok("Removed"), ...errors("400", "401", "403", "404", "409", "503") },
        },
      },
      "/v1/conversations/{conversation_id}/messages": {
        post: {
          summary:
            "Send a text message. Idempotent by sender_id + client_message_id: a repeat answers the stored message; " +
            "the same key with another conversation, kind or text is 409 idempotency_key_reused. User token.",
          parameters: [conversation],
          requestBody: jsonBody(sendTextBody),
          responses: { "200": ok("The message", messageResponse), ...errors(...SEND_ERRORS) },
        },
        get: {
          summary: "History, newest first, in the events' shape. User token: a member's only.",
          parameters: [conversation, ...queryParameters(historyQuery)],
          responses: {
            "200": ok("A page of history", historyResponse),
            ...errors("400", "401", "403", "404", "503"),
          },
        },
      },
      "/v1/conversations/{conversation_id}/media": {
        post: {
          summary:
            "Upload a file and send it (idempotent by sender_id + client_message_id). The raw bytes are the body; " +
            "the kind is decided from them: image (png, jpeg, gif, webp: width, height, thumbnails), video (mp4, " +
            "webm, quicktime, ogg, matroska), audio (audio/*), file (pdf, zip, office documents, UTF-8 text). " +
            "Content-Type is optional and must not contradict the bytes (415). Larger than the homeserver's " +
            "max_upload_size: 413. User token.",
          parameters: [conversation, ...queryParameters(sendMediaQuery)],
          requestBody: {
            required: true,
            content: { "*/*": { schema: { type: "string", contentMediaType: "application/octet-stream" } } },
          },
          responses: {
            "200": ok("The message, with its mxc:// URI and the bridge's media_url", messageResponse),
            ...errors("415", ...SEND_ERRORS),
          },
        },
      },
      "/v1/media/{server_name}/{media_id}": {
        get: {
          summary:
            "A message's media (the content's media_url), streamed from the homeserver: to the service, or to a " +
            "member of a conversation it was sent in (user token, also as ?access_token=). Anyone else, an unknown " +
            "id and a deleted message's media: the same 404. Range requests (206, 416), ETag/If-None-Match (304), " +
            "Cache-Control private.",
          parameters: [
            pathParameter("server_name"),
            pathParameter("media_id"),
            ...queryParameters(mediaQuery),
          ],
          responses: {
            "200": { description: "The file" },
            "206": { description: "The requested byte range" },
            "304": { description: "Not modified (If-None-Match)" },
            "416": { description: "The range is past the end of the file" },
            ...errors("400", "401", "404", "503"),
          },
        },
      },
      "/v1/media/{server_name}/{media_id}/thumbnail/{size}": {
        get: {
          summary:
            "A thumbnail of an image made by the homeserver: small (96x96 crop), medium (320x240 scale), large " +
            "(800x600 scale). Same access rule as the media.",
          parameters: [
            pathParameter("server_name"),
            pathParameter("media_id"),
            { name: "size", in: "path", required: true, schema: { enum: ["small", "medium", "large"] } },
            ...queryParameters(mediaQuery),
          ],
          responses: {
            "200": { description: "The thumbnail (image/jpeg or image/png)" },
            "304": { description: "Not modified (If-None-Match)" },
            ...errors("400", "401", "404", "503"),
          },
        },
      },
      "/v1/conversations/{conversation_id}/audio": {
        post: {
          deprecated: true,
          summary: "Upload audio and send it: POST .../media, refused (415) unless the file is audio",
          parameters: [conversation, ...queryParameters(sendAudioQuery)],
          requestBody: {
            required: true,
            content: { "audio/*": { schema: { type: "string", contentMediaType: "audio/*" } } },
          },
          responses: {
            "200": ok("The message, with its mxc:// URI", messageResponse),
            ...errors("415", ...SEND_ERRORS),
          },
        },
      },
      "/v1/conversations/{conversation_id}/messages/{message_id}": {
        patch: {
          summary: "Edit a text message (its author only: 403 otherwise). User token.",
          parameters: [conversation, message],
          requestBody: jsonBody(editBody),
          responses: { "200": ok("The edit", editResponse), ...errors(...SEND_ERRORS) },
        },
        delete: {
          summary:
            "Delete a message (and its author's edits). No body needed: the author's ghost redacts. A sender_id " +
            "other than the author's: 403. User token (as its own user).",
          parameters: [conversation, message],
          requestBody: { ...jsonBody(deleteBody), required: false },
          responses: { "200": ok("Deleted", deletedResponse), ...errors(...SEND_ERRORS) },
        },
      },
      "/v1/user-tokens": {
        post: {
          summary: "Mint a short-lived user token (service token only)",
          requestBody: jsonBody(userTokenBody),
          responses: { "200": ok("The token", userTokenResponse), ...errors("400", "401", "403") },
        },
      },
      "/v1/events": {
        get: {
          summary:
            "WebSocket (upgrade): one Event per text frame, everything after ?since=<cursor> then live. A service token " +
            "sees every event, a user token only its conversations' (membership checked at delivery). A slow client is " +
            "closed with code 4008 and a reason; it reconnects with ?since=<last cursor>. A cursor before what the log " +
            "keeps is closed with code 4410 and a reason (reload history, reconnect without since). The server pings. " +
            "Without an upgrade: one page of the same events after ?since (catching up over HTTP), 410 `cursor_expired` " +
            "for a cursor before what the log keeps.",
          parameters: queryParameters(catchUpQuery),
          responses: {
            "101": {
              description: "Switching protocols; frames are Event objects",
              content: { "application/json": { schema: { $ref: "#/components/schemas/Event" } } },
            },
            "200": ok("A page of the log (no upgrade)", catchUpResponse),
            ...errors("400", "401", "410"),
          },
        },
      },
      "/healthz": { get: { security: [], summary: "The process is up", responses: { "200": ok("Up") } } },
      "/readyz": {
        get: {
          security: [],
          summary: "Synapse and Postgres reachable and the sync loop caught up",
          responses: { "200": ok("Ready"), "503": ok("Not ready") },
        },
      },
      "/metrics": {
        get: { security: [], summary: "Prometheus metrics", responses: { "200": ok("Metrics") } },
      },
      "/v1/openapi.json": {
        get: { security: [], summary: "This document", responses: { "200": ok("OpenAPI 3.1") } },
      },
    },
  };
}
