// Who is calling. A service holds the bridge API token (a generated secret) and may do everything; an end user
// holds a short-lived token that realtime-chat-service signs with the WebSocket signing key (HMAC-SHA256):
//   token = "v1." + base64url(JSON {"sub": <Nova user id>, "exp": <unix seconds>, "kid": <key id>})
//           + "." + base64url(HMAC(key, "v1." + payload))
//   kid   = base64url(SHA-256("nova-ws-key\n" + key)), first 8 characters (names the key without revealing it)
// Any language can mint one; `signUserToken` is the reference implementation. During a key rotation the bridge
// accepts the current and the previous key; `kid` picks the one to check (a token without it is checked with both).
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { Secret } from "../config/secret.ts";

export type Caller = { kind: "service" } | { kind: "user"; userId: string };

const PREFIX = "v1.";
const payloadSchema = z.strictObject({
  sub: z.string().min(1).max(255),
  exp: z.number().int(),
  kid: z.string().max(64).optional(),
});

const mac = (key: Secret, data: string) => createHmac("sha256", key.reveal()).update(data).digest();

/** The id of a signing key: what a token names in `kid`. Not secret (a digest), stable for a key. */
export function keyId(key: Secret): string {
  return createHash("sha256").update(`nova-ws-key\n${key.reveal()}`).digest("base64url").slice(0, 8);
}

/** A token for `userId` valid until `expiresAt` (unix seconds), naming its key. */
export function signUserToken(key: Secret, userId: string, expiresAt: number): string {
  const payload = Buffer.from(JSON.stringify({ sub: userId, exp: expiresAt, kid: keyId(key) })).toString(
    "base64url",
  );
  return `${PREFIX}${payload}.${mac(key, `${PREFIX}${payload}`).toString("base64url")}`;
}

export type TokenCheck = { ok: true; userId: string } | { ok: false; reason: string };

export interface VerifyOptions {
  /** The keys accepted: the current one first, then the previous one during a rotation. */
  keys: readonly Secret[];
  /** A token whose `exp` lies further ahead than this is refused (a token minted for a year is a leak waiting). */
  maxTtlSeconds: number;
  nowSeconds?: number;
}

/** Verifies a user token's signature and expiry; the reason never echoes the token. */
export function verifyUserToken(token: string, options: VerifyOptions): TokenCheck {
  const now = options.nowSeconds ?? Date.now() / 1000;
  if (!token.startsWith(PREFIX)) return { ok: false, reason: "not a user token" };
  const [payload, signature, ...rest] = token.slice(PREFIX.length).split(".");
  if (!payload || !signature || rest.length > 0) return { ok: false, reason: "malformed token" };
  let claims: z.infer<typeof payloadSchema>;
  try {
    claims = payloadSchema.parse(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")));
  } catch {
    return { ok: false, reason: "malformed token" };
  }
  const candidates =
    claims.kid === undefined ? options.keys : options.keys.filter((key) => keyId(key) === claims.kid);
  if (candidates.length === 0) return { ok: false, reason: "unknown signing key" };
  const given = Buffer.from(signature, "base64url");
  const signed = candidates.some((key) => {
    const expected = mac(key, `${PREFIX}${payload}`);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!signed) return { ok: false, reason: "bad signature" };
  if (claims.exp <= now) return { ok: false, reason: "expired token" };
  if (claims.exp > now + options.maxTtlSeconds)
    return { ok: false, reason: `expiry too far ahead (at most ${options.maxTtlSeconds} s)` };
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
