// The OpenAPI 3.1 document's frame. Its paths are not written here: @fastify/swagger collects every route as fastify
// registers it, and fastify-type-provider-zod turns each route's `schema` (the zod schemas the route validates with,
// schemas.ts) into JSON Schema. A route is documented by the same definition that validates it, so the two cannot
// drift. This file holds what routes share: the error responses, the raw-bytes shapes, the document's description.
import type { FastifyDynamicSwaggerOptions } from "@fastify/swagger";
import { createJsonSchemaTransform, createJsonSchemaTransformObject } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponse } from "./schemas.ts";

const ERROR_STATUSES = {
  400: "Malformed or invalid request; `error.field` names the field.",
  401: "Missing or invalid token.",
  403: "The token may not do this, or the sender is not the message's author (`forbidden`).",
  404: "Unknown conversation or message.",
  409:
    "`conflict`: the conversation exists with another kind or other members. `idempotency_key_reused`: this " +
    "sender already used the client_message_id for another conversation, kind or content (`error.field` says which).",
  410:
    "`cursor_expired`: `since` lies before what the event log keeps (pruned after its retention); reload history, " +
    "then resume without `since` (from the head).",
  413: "Body too large.",
  415: "Not an accepted content type.",
  429: "Rate limited; see Retry-After.",
  503: "Homeserver unavailable or integration disabled; see Retry-After.",
} as const;
type ErrorStatus = keyof typeof ERROR_STATUSES;

/** Every /v1 route can answer these: no token, too many requests, no homeserver. */
const ALWAYS: ErrorStatus[] = [401, 429, 503];

/** Response schemas for the error statuses a route answers (with 401, 429 and 503), in the API's error shape. */
export function errorResponses(...statuses: ErrorStatus[]) {
  return Object.fromEntries(
    [...new Set([...statuses, ...ALWAYS])].map((status) => [
      status,
      {
        description: ERROR_STATUSES[status],
        content: { "application/json": { schema: errorResponse } },
      },
    ]),
  ) as Record<
    ErrorStatus,
    { description: string; content: { "application/json": { schema: typeof errorResponse } } }
  >;
}

/** The statuses of a send, an edit and a deletion. */
export const SEND_ERRORS: ErrorStatus[] = [400, 403, 404, 409, 413];

/** A raw file as a request body: any content type, at least one byte. */
export const rawBytesBody = z
  .custom<Buffer>((value) => Buffer.isBuffer(value) && value.byteLength > 0, {
    error: "expected the file's bytes as the request body",
  })
  .meta({ type: "string", contentMediaType: "application/octet-stream" });

/** A streamed file in a response (never serialized: fastify sends streams as they are). */
export const rawBytes = (description: string) =>
  z.string().meta({ description, contentMediaType: "application/octet-stream" });

/** A response without a body (204, 304): `type: "null"`, which @fastify/swagger documents without content. */
export const noBody = (description: string) => z.undefined().meta({ description });

/** Documented as `x-optional-body` by a route whose JSON body may be left out (fastify marks every body required). */
export const OPTIONAL_BODY = "x-optional-body";

const DESCRIPTION =
  "Conversations, messages and attachments (image, video, audio, file) on Nova's Matrix homeserver, their " +
  "media, and a WebSocket push of message.new / message.edited / message.deleted. Services authenticate with " +
  "`Authorization: Bearer <bridge API token>` and name the acting user (`sender_id`). End users hold a user " +
  "token: `v1.<base64url(JSON {sub, exp})>.<base64url(HMAC-SHA256(signing key, 'v1.' + payload))>` (exp in " +
  "unix seconds), minted by realtime-chat-service or by POST /v1/user-tokens; with it they act as themselves " +
  "only, in their own conversations (the operations whose security lists `userToken`). The event stream and " +
  "media reads also take either token as `?access_token=` (`queryToken`: a browser's WebSocket, <img>, <audio> " +
  "and <video> cannot send headers). This document is generated from the routes' own validating schemas, and " +
  "each operation's security from the same route setting that authenticates it.";

/** The document's security schemes: the tokens `authenticate` (plugins/auth.ts) accepts. */
const SECURITY_SCHEMES = {
  serviceToken: {
    type: "http",
    scheme: "bearer",
    description: "The bridge's API token (BRIDGE_API_TOKEN), held by realtime-chat-service: every /v1 route.",
  },
  userToken: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "v1.<payload>.<signature>",
    description:
      "A user token (signed with BRIDGE_WS_SIGNING_KEY): the routes where a user acts as themselves.",
  },
  queryToken: {
    type: "apiKey",
    in: "query",
    name: "access_token",
    description: "Either token in the query: only the event stream and the media reads.",
  },
} as const;
type SecurityRequirement = Partial<Record<keyof typeof SECURITY_SCHEMES, []>>;

/**
 * Who may call a route, from the route setting `authenticate` reads (`config.userTokens`, `config.queryToken`),
 * so the document cannot claim another rule than the one enforced. A route that states its own `security` (the
 * public ones: `[]`) keeps it.
 */
export function securityOf(config: { userTokens?: boolean; queryToken?: boolean } | undefined) {
  const requirements: SecurityRequirement[] = [{ serviceToken: [] }];
  if (config?.userTokens) requirements.push({ userToken: [] });
  if (config?.queryToken) requirements.push({ queryToken: [] });
  return requirements;
}

type Document = Record<string, unknown> & { paths?: Record<string, Record<string, Record<string, unknown>>> };

// Each route's zod schemas as JSON Schema (request parts as accepted, responses as sent).
const toJsonSchemas = createJsonSchemaTransform({});
// zod's global registry: the schemas' `.meta()` (descriptions, ids) is where the document's text comes from.
const toComponents = createJsonSchemaTransformObject({});

/** The options of @fastify/swagger: registered before any route, so it sees every one. */
export const openApiOptions: FastifyDynamicSwaggerOptions = {
  openapi: {
    openapi: "3.1.0",
    info: { title: "nova-matrix bridge", version: "1", description: DESCRIPTION },
    components: { securitySchemes: SECURITY_SCHEMES },
    // Every operation states its own (below); an operation that did not would need the service's token.
    security: [{ serviceToken: [] }],
  },
  transform: (input) => {
    // A route without a schema still gets its security (and the test's "Default Response" complaint).
    const { schema = {}, url } = toJsonSchemas(input);
    if (schema.hide || schema.security !== undefined) return { schema, url };
    return { schema: { ...schema, security: securityOf(input.route.config) }, url };
  },
  transformObject: (input) => {
    // The library's types name OpenAPI 3.0's document; the one built here is 3.1 (same shape where it matters).
    const document = toComponents(input) as Document;
    for (const operations of Object.values(document.paths ?? {}))
      for (const operation of Object.values(operations)) {
        if (!operation[OPTIONAL_BODY]) continue;
        delete operation[OPTIONAL_BODY];
        (operation.requestBody as { required: boolean }).required = false;
      }
    // Each component comes as an input and an output variant; keep the ones a route uses.
    const components =
      (document.components as { schemas?: Record<string, unknown> } | undefined)?.schemas ?? {};
    const text = JSON.stringify(document);
    for (const name of Object.keys(components))
      if (!text.includes(`"#/components/schemas/${name}"`)) delete components[name];
    return document as ReturnType<typeof toComponents>;
  },
};

/** A JSON response with its description (the schema stays the shared one, so a component stays a `$ref`). */
export const jsonResponse = <S extends z.ZodType>(description: string, schema: S) => ({
  description,
  content: { "application/json": { schema } },
});
