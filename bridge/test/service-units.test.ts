// The service's pure parts, directly: user tokens, the wire shape of events, the lag, input errors, error mapping.
import { createHmac } from "node:crypto";
import Fastify from "fastify";
import { type FastifyPluginAsyncZod, validatorCompiler } from "fastify-type-provider-zod";
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
import { fromValidationError, toApiError } from "../src/service/errors.ts";
import { syncLagSeconds } from "../src/service/metrics.ts";
import { callerOf } from "../src/service/plugins/auth.ts";
import { createConversationBody, toWireEvent } from "../src/service/schemas.ts";
import { bearerOf, isApiToken, keyId, signUserToken, verifyUserToken } from "../src/service/tokens.ts";

const key = new Secret("k".repeat(40));

describe("user tokens", () => {
  const verify = (token: string, nowSeconds: number, keys = [key], maxTtlSeconds = 3600) =>
    verifyUserToken(token, { keys, maxTtlSeconds, nowSeconds });

  it("verify for the named user until they expire", () => {
    const token = signUserToken(key, "alice", 2000);
    expect(verify(token, 1999)).toEqual({ ok: true, userId: "alice" });
    expect(verify(token, 2000)).toEqual({ ok: false, reason: "expired token" });
  });

  it("refuse another key's signature, an edited payload, and malformed tokens", () => {
    const token = signUserToken(key, "alice", 2000);
    expect(verify(token, 0, [new Secret("x".repeat(40))]).ok).toBe(false);
    const [prefix, , signature] = token.split(".");
    const forged = `${prefix}.${Buffer.from(JSON.stringify({ sub: "mallory", exp: 2000, kid: keyId(key) })).toString("base64url")}.${signature}`;
    expect(verify(forged, 1000)).toEqual({ ok: false, reason: "bad signature" });
    for (const bad of ["", "v1.", "v1.a", "v1.a.b.c", "v2.a.b", token.slice(0, -1)])
      expect(verify(bad, 1000).ok, bad).toBe(false);
  });

  it("refuse an expiry further ahead than the maximum lifetime (a token valid for a year)", () => {
    const now = 1_000_000;
    expect(verify(signUserToken(key, "alice", now + 3600), now).ok).toBe(true);
    expect(verify(signUserToken(key, "alice", now + 365 * 86_400), now)).toEqual({
      ok: false,
      reason: "expiry too far ahead (at most 3600 s)",
    });
  });

  it("accept the previous key during a rotation, chosen by the token's kid; tokens without kid try both", () => {
    const previous = new Secret("p".repeat(40));
    const keys = [key, previous];
    expect(keyId(key)).not.toBe(keyId(previous));
    expect(verify(signUserToken(previous, "bob", 2000), 1000, keys)).toEqual({ ok: true, userId: "bob" });
    expect(verify(signUserToken(key, "bob", 2000), 1000, keys)).toEqual({ ok: true, userId: "bob" });
    // After the rotation ends (the previous key dropped), its tokens are refused by name.
    expect(verify(signUserToken(previous, "bob", 2000), 1000, [key])).toEqual({
      ok: false,
      reason: "unknown signing key",
    });
    // The first version of the format had no kid.
    const payload = Buffer.from(JSON.stringify({ sub: "carol", exp: 2000 })).toString("base64url");
    const legacy = `v1.${payload}.${createHmac("sha256", previous.reveal()).update(`v1.${payload}`).digest("base64url")}`;
    expect(verify(legacy, 1000, keys)).toEqual({ ok: true, userId: "carol" });
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
  /** What the route's schema validation (fastify-type-provider-zod) answers for a body, as the API's error. */
  const error = async (value: unknown) => {
    const app = Fastify();
    app.setValidatorCompiler(validatorCompiler);
    app.setErrorHandler((e, _request, reply) => {
      const apiError = fromValidationError(e);
      if (!apiError) throw new Error(`not a validation error: ${String(e)}`);
      reply.code(apiError.status).send(apiError.body());
    });
    const routes: FastifyPluginAsyncZod = async (scoped) => {
      scoped.post("/c", { schema: { body: createConversationBody } }, async () => "accepted");
    };
    await app.register(routes);
    const answer = await app.inject({
      method: "POST",
      url: "/c",
      payload: JSON.stringify(value),
      headers: { "content-type": "application/json" },
    });
    await app.close();
    expect(answer.statusCode, answer.body).toBe(400);
    return (answer.json() as { error: { code: string; message: string; field?: string } }).error;
  };
  it("name the field, including unknown and nested ones", async () => {
    expect(await error({ conversation_id: "c", kind: "dm", members: ["a", "b"], extra: 1 })).toMatchObject({
      field: "extra",
      message: "extra: unknown field (accepted fields are documented in /v1/openapi.json)",
    });
    expect((await error({ conversation_id: "c", kind: "dm", members: ["a", 2] })).field).toBe("members[1]");
    expect(await error({ kind: "dm", members: ["a", "b"] })).toMatchObject({
      field: "conversation_id",
      message: "conversation_id: expected a conversation id (a string)",
    });
    expect(await error("not an object")).toMatchObject({ code: "invalid_request", field: "body" });
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
