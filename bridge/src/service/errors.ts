// The HTTP API's errors: one JSON shape `{error: {code, message, field?}}` and one place that maps the core's
// errors to statuses, so every route answers the same way.

import { InvalidIdError } from "@nova-matrix/contracts";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { safeGetRetryAfterMs } from "matrix-js-sdk/lib/http-api/index.js";
import {
  ConversationConflictError,
  ConversationNotFoundError,
  IdempotencyKeyReusedError,
  InvalidInputError,
  MessageNotFoundError,
  NotAuthorError,
  UploadRejectedError,
} from "../core/errors.ts";
import {
  ConnectionError,
  HomeserverUnreachableError,
  HTTPError,
  TokenRejectedError,
} from "../matrix/errors.ts";
import { CursorExpiredError } from "../store/store.ts";

export type ErrorCode =
  | "invalid_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "idempotency_key_reused"
  | "payload_too_large"
  | "unsupported_media_type"
  | "cursor_expired"
  | "rate_limited"
  | "unavailable"
  | "internal";

export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  readonly code: ErrorCode;
  readonly field: string | undefined;
  /** Seconds, for 429 and 503. */
  readonly retryAfter: number | undefined;
  constructor(
    status: number,
    code: ErrorCode,
    message: string,
    extra: { field?: string; retryAfter?: number } = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = extra.field;
    this.retryAfter = extra.retryAfter;
  }

  body(): { error: { code: ErrorCode; message: string; field?: string } } {
    return {
      error: {
        code: this.code,
        message: withoutMatrixIds(this.message),
        ...(this.field ? { field: this.field } : {}),
      },
    };
  }
}

/**
 * An error's text without Matrix user ids, room ids or aliases (`@x:server`, `!x:server`, `#x:server`): they are the
 * bridge's internals, not the caller's business, whichever error they came from. Event ids (`$...`) are message ids.
 */
export function withoutMatrixIds(text: string): string {
  return text.replace(/[@!#][^\s:"'`]+:[A-Za-z0-9.-]+(?::\d+)?/g, "(a Matrix id)");
}

/** `members[0]`, `text`: the field an issue is about, as a caller writes it. */
export function fieldOf(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) => (typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`))
    .join("");
}

/** What fastify names a request part (`validationContext`), as the API's error names it when no field is at fault. */
const PARTS: Record<string, string> = {
  params: "path",
  querystring: "query",
  body: "body",
  headers: "headers",
};

/**
 * A request that failed its route's schema (fastify-type-provider-zod's validation error: the zod issues, each with
 * its path joined by slashes) as the API's 400 naming the first offending field; undefined for any other error.
 */
export function fromValidationError(error: unknown): ApiError | undefined {
  if (!hasZodFastifySchemaValidationErrors(error)) return undefined;
  const [first] = error.validation;
  const part = PARTS[String((error as { validationContext?: string }).validationContext)] ?? "request";
  if (!first) return new ApiError(400, "invalid_request", `${part} is invalid`);
  const path = first.instancePath
    .split("/")
    .filter((segment) => segment !== "")
    .map((segment) => (/^\d+$/.test(segment) ? Number(segment) : segment));
  const keys = (first.params as { keys?: unknown }).keys;
  return invalidInput(
    {
      code: first.keyword,
      path,
      message: first.message ?? "is invalid",
      ...(Array.isArray(keys) ? { keys } : {}),
    },
    part,
  );
}

/** A zod issue as a 400 naming its field (an unknown key: the key itself; no path: the request part). */
function invalidInput(
  issue: { code: string; path: readonly PropertyKey[]; message: string; keys?: readonly unknown[] },
  part: string,
): ApiError {
  const keys = issue.code === "unrecognized_keys" ? (issue.keys ?? []) : [];
  const field = keys.length > 0 ? fieldOf([...issue.path, String(keys[0])]) : fieldOf(issue.path) || part;
  const message =
    issue.code === "unrecognized_keys"
      ? `unknown field (accepted fields are documented in /v1/openapi.json)`
      : issue.message;
  return new ApiError(400, "invalid_request", `${field}: ${message}`, { field });
}

const RETRY_UNAVAILABLE_SECONDS = 5;

/** Any error thrown by a route, as the API's error. Unknown errors are 500s whose details stay in the log. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof CursorExpiredError)
    return new ApiError(410, "cursor_expired", error.message, { field: "since" });
  if (error instanceof NotAuthorError)
    return new ApiError(403, "forbidden", error.message, { field: fieldName(error.field) });
  if (error instanceof IdempotencyKeyReusedError)
    return new ApiError(409, "idempotency_key_reused", error.message, { field: fieldName(error.field) });
  if (error instanceof MessageNotFoundError)
    return new ApiError(404, "not_found", "no such message in this conversation", { field: "message_id" });
  if (error instanceof UploadRejectedError) {
    if (error.field === "mimetype") return new ApiError(415, "unsupported_media_type", error.message);
    if (/accepts at most/.test(error.message))
      return new ApiError(413, "payload_too_large", error.message, { field: "body" });
    return new ApiError(400, "invalid_request", error.message, { field: fieldName(error.field) });
  }
  // An id that cannot become a Matrix id (too long once escaped) is the caller's mistake wherever it is found.
  if (error instanceof InvalidIdError) return new ApiError(400, "invalid_request", error.message);
  if (error instanceof InvalidInputError)
    return new ApiError(400, "invalid_request", error.message, { field: fieldName(error.field) });
  if (error instanceof ConversationNotFoundError)
    return new ApiError(404, "not_found", `conversation ${error.conversationId} does not exist`, {
      field: "conversation_id",
    });
  if (error instanceof ConversationConflictError) return new ApiError(409, "conflict", error.message);
  if (error instanceof HTTPError) {
    const status = error.httpStatus ?? 500;
    const errcode = (error as { errcode?: string }).errcode;
    if (status === 429) {
      const seconds = Math.max(1, Math.ceil(safeGetRetryAfterMs(error, 1000) / 1000));
      return new ApiError(429, "rate_limited", "the homeserver is rate limiting; retry later", {
        retryAfter: seconds,
      });
    }
    if (status === 404 || errcode === "M_NOT_FOUND")
      return new ApiError(404, "not_found", "no such message in this conversation", { field: "message_id" });
    if (status === 413 || errcode === "M_TOO_LARGE")
      return new ApiError(413, "payload_too_large", "the homeserver refused the upload as too large");
    if (status >= 500)
      return new ApiError(503, "unavailable", `the homeserver failed (HTTP ${status}); retry later`, {
        retryAfter: RETRY_UNAVAILABLE_SECONDS,
      });
    if (status === 403)
      return new ApiError(403, "forbidden", "the homeserver refused this for the sender (not a member?)");
    if (status === 400)
      return new ApiError(400, "invalid_request", "the homeserver refused the request as invalid");
  }
  if (error instanceof ConnectionError || error instanceof HomeserverUnreachableError)
    return new ApiError(503, "unavailable", "the homeserver is unreachable; retry later", {
      retryAfter: RETRY_UNAVAILABLE_SECONDS,
    });
  if (error instanceof TokenRejectedError)
    return new ApiError(503, "unavailable", "the homeserver refused the bridge's token", {
      retryAfter: RETRY_UNAVAILABLE_SECONDS,
    });
  if (isDatabaseUnavailable(error))
    return new ApiError(503, "unavailable", "the bridge's database is unavailable; retry later", {
      retryAfter: RETRY_UNAVAILABLE_SECONDS,
    });
  return new ApiError(500, "internal", "internal error (see the bridge's log)");
}

/**
 * PostgreSQL restarting or unreachable (found by the fault test that restarts it under load): SQLSTATE classes 08
 * (connection exception) and 57P (shutdown, cannot connect now), socket errors, or pg's "Connection terminated".
 */
function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === "string" && /^(08|57P)|^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT)$/.test(code))
    return true;
  return (
    error instanceof Error &&
    /^Connection terminated|connection error|timeout exceeded when trying to connect/i.test(error.message)
  );
}

/** The core names fields in camelCase; the API's JSON uses snake_case. */
const FIELD_NAMES: Record<string, string> = {
  conversationId: "conversation_id",
  senderId: "sender_id",
  messageId: "message_id",
  idempotencyKey: "client_message_id",
  durationMs: "duration_ms",
  userIds: "user_id",
  audio: "body",
  data: "body",
  mimetype: "content-type",
  contentType: "content-type",
  /** A key reused for another kind of request: the key is what to change. */
  kind: "client_message_id",
};

function fieldName(field: string): string {
  const head = field.replace(/\[.*$/, "");
  const mapped = FIELD_NAMES[head];
  return mapped ? `${mapped}${field.slice(head.length)}` : field;
}
