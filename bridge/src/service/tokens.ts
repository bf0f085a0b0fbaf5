// Who is calling. A service holds the bridge API token (a generated secret) and may do everything; an end user
// holds a short-lived token that realtime-chat-service signs with the WebSocket signing key (HMAC-SHA256):
//   token = "v1." + base64url(JSON {"sub": <Nova user id>, "exp": <unix seconds>}) + "." + base64url(HMAC(key, "v1." + payload))
// Any language can mint one; `signUserToken` is the reference implementation.
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { Secret } from "../config/secret.ts";

export type Caller = { kind: "service" } | { kind: "user"; userId: string };

const PREFIX = "v1.";
const payloadSchema = z.strictObject({ sub: z.string().min(1).max(255), exp: z.number().int() });

const mac = (key: Secret, data: string) => createHmac("sha256", key.reveal()).update(data).digest();

/** A token for `userId` valid until `expiresAt` (unix seconds). */
export function signUserToken(key: Secret, userId: string, expiresAt: number): string {
  const payload = Buffer.from(JSON.stringify({ sub: userId, exp: expiresAt })).toString("base64url");
  return `${PREFIX}${payload}.${mac(key, `${PREFIX}${payload}`).toString("base64url")}`;
}

export type TokenCheck = { ok: true; userId: string } | { ok: false; reason: string };

/** Verifies a user token's signature and expiry; the reason never echoes the token. */
export function verifyUserToken(key: Secret, token: string, nowSeconds = Date.now() / 1000): TokenCheck {
  if (!token.startsWith(PREFIX)) return { ok: false, reason: "not a user token" };
  const [payload, signature, ...rest] = token.slice(PREFIX.length).split(".");
  if (!payload || !signature || rest.length > 0) return { ok: false, reason: "malformed token" };
  const expected = mac(key, `${PREFIX}${payload}`);
  const given = Buffer.from(signature, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: "bad signature" };
  let claims: z.infer<typeof payloadSchema>;
  try {
    claims = payloadSchema.parse(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")));
  } catch {
    return { ok: false, reason: "malformed token" };
  }
  if (claims.exp <= nowSeconds) return { ok: false, reason: "expired token" };
  return { ok: true, userId: claims.sub };
}

/** Constant-time comparison of a presented API token with the configured one. */
export function isApiToken(apiToken: Secret, presented: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(apiToken.reveal());
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The bearer token of an `Authorization` header, or undefined. */
export function bearerOf(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}
