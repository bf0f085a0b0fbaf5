// The service's pure parts, directly: user tokens, the wire shape of events, the lag, input errors, error mapping.
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { Secret } from "../src/config/secret.ts";
import {
  ConversationConflictError,
  ConversationNotFoundError,
  InvalidInputError,
  MessageNotFoundError,
  UploadRejectedError,
} from "../src/core/errors.ts";
import type { BridgeEvent } from "../src/core/events.ts";
import { type ApiError, parseInput, toApiError } from "../src/service/errors.ts";
import { syncLagSeconds } from "../src/service/metrics.ts";
import { callerOf } from "../src/service/plugins/auth.ts";
import { createConversationBody, toWireEvent } from "../src/service/schemas.ts";
import { bearerOf, isApiToken, signUserToken, verifyUserToken } from "../src/service/tokens.ts";

const key = new Secret("k".repeat(40));

describe("user tokens", () => {
  it("verify for the named user until they expire", () => {
    const token = signUserToken(key, "alice", 2000);
    expect(verifyUserToken(key, token, 1999)).toEqual({ ok: true, userId: "alice" });
    expect(verifyUserToken(key, token, 2000)).toEqual({ ok: false, reason: "expired token" });
  });

  it("refuse another key's signature, an edited payload, and malformed tokens", () => {
    const token = signUserToken(key, "alice", 2000);
    expect(verifyUserToken(new Secret("x".repeat(40)), token, 0).ok).toBe(false);
    const [prefix, , signature] = token.split(".");
    const forged = `${prefix}.${Buffer.from(JSON.stringify({ sub: "mallory", exp: 2000 })).toString("base64url")}.${signature}`;
    expect(verifyUserToken(key, forged, 0)).toEqual({ ok: false, reason: "bad signature" });
    for (const bad of ["", "v1.", "v1.a", "v1.a.b.c", "v2.a.b", token.slice(0, -1)])
      expect(verifyUserToken(key, bad, 0).ok, bad).toBe(false);
  });

  it("compares the API token exactly and reads bearer headers", () => {
    const api = new Secret("s".repeat(48));
    expect(isApiToken(api, "s".repeat(48))).toBe(true);
    expect(isApiToken(api, "s".repeat(47))).toBe(false);
    expect(bearerOf("Bearer abc")).toBe("abc");
    expect(bearerOf("bearer  abc ")).toBe("abc");
    expect(bearerOf("Basic abc")).toBeUndefined();
    expect(bearerOf(undefined)).toBeUndefined();
  });
});

describe("wire events", () => {
  const base = { event_id: "$e", conversation_id: "c", sender_id: "alice", origin_server_ts: 5 };
  it("name the message an edit or a deletion changes as message_id", () => {
    const edited: BridgeEvent = {
      type: "message.edited",
      ...base,
      message_id: "$edit",
      replaces_message_id: "$original",
      content: { kind: "text", body: "new" },
    };
    expect(toWireEvent(edited, "7")).toEqual({
      type: "message.edited",
      cursor: "7",
      event_id: "$e",
      conversation_id: "c",
      sender_id: "alice",
      origin_ts: 5,
      message_id: "$original",
      edit_id: "$edit",
      content: { kind: "text", body: "new" },
    });
    const deleted: BridgeEvent = { type: "message.deleted", ...base, message_id: "$original", reason: null };
    expect(toWireEvent(deleted)).toMatchObject({ message_id: "$original", reason: null });
    expect(toWireEvent(deleted)).not.toHaveProperty("cursor");
  });
});

describe("sync lag", () => {
  const status = { running: true, caughtUp: true, lastSyncAt: 10_000, pollTimeoutMs: 30_000 };
  it("is zero within a quiet long-poll and grows after it", () => {
    expect(syncLagSeconds(status, 35_000)).toBe(0);
    expect(syncLagSeconds(status, 100_000)).toBe(60);
    expect(syncLagSeconds({ ...status, lastSyncAt: undefined }, 0)).toBe(Number.POSITIVE_INFINITY);
    expect(syncLagSeconds({ ...status, running: false }, 1e9)).toBe(0);
  });
});

describe("input errors", () => {
  const error = (value: unknown) => {
    try {
      parseInput(createConversationBody, value, "body");
    } catch (e) {
      return e as ApiError;
    }
    throw new Error("expected a failure");
  };
  it("name the field, including unknown and nested ones", () => {
    expect(error({ conversation_id: "c", kind: "dm", members: ["a", "b"], extra: 1 }).field).toBe("extra");
    expect(error({ conversation_id: "c", kind: "dm", members: ["a", 2] }).field).toBe("members[1]");
    expect(error({ kind: "dm", members: ["a", "b"] }).field).toBe("conversation_id");
    expect(error("not an object")).toMatchObject({ status: 400, code: "invalid_request", field: "body" });
  });

  it("map the core's errors to statuses", () => {
    expect(toApiError(new ConversationNotFoundError("c"))).toMatchObject({
      status: 404,
      field: "conversation_id",
    });
    expect(toApiError(new MessageNotFoundError("messageId", "no such message"))).toMatchObject({
      status: 404,
      field: "message_id",
    });
    expect(toApiError(new ConversationConflictError("c", "kind"))).toMatchObject({ status: 409 });
    expect(toApiError(new UploadRejectedError("mimetype", "expected audio"))).toMatchObject({ status: 415 });
    expect(
      toApiError(new UploadRejectedError("audio", "is 9 bytes; the homeserver accepts at most 8")),
    ).toMatchObject({
      status: 413,
    });
    expect(toApiError(new InvalidInputError("senderId", "bad"))).toMatchObject({
      status: 400,
      field: "sender_id",
    });
    expect(toApiError(new Error("boom"))).toMatchObject({ status: 500, code: "internal" });
    expect(toApiError(new Error("boom")).message).not.toContain("boom");
  });
});

describe("callerOf (the one accessor every handler uses)", () => {
  it("refuses with 401 in a handler that runs without an authenticated caller", async () => {
    const app = Fastify();
    app.decorateRequest("caller", null);
    // A route registered outside the authenticated context, as a mistake would: its handler still refuses.
    app.get("/v1/forgotten", async (request) => callerOf(request));
    app.setErrorHandler((error, _request, reply) => {
      const apiError = toApiError(error);
      reply.code(apiError.status).send(apiError.body());
    });
    const answer = await app.inject({ method: "GET", url: "/v1/forgotten" });
    expect(answer.statusCode).toBe(401);
    expect(answer.json()).toMatchObject({ error: { code: "unauthorized" } });
    await app.close();
  });
});
