import { createHmac } from "node:crypto";

export interface RegisteredUser {
  user_id: string;
  access_token: string;
  device_id: string;
}

/**
 * Registers a user with Synapse's shared-secret admin API (`/_synapse/admin/v1/register`): the way the
 * runbook made accounts, since open registration is off.
 */
export async function registerWithSharedSecret(
  baseUrl: string,
  sharedSecret: string,
  user: { username: string; password: string; admin?: boolean },
): Promise<RegisteredUser> {
  const endpoint = `${baseUrl}/_synapse/admin/v1/register`;
  const nonceResponse = await fetch(endpoint);
  if (!nonceResponse.ok) throw new Error(`GET ${endpoint} answered ${nonceResponse.status}`);
  const { nonce } = (await nonceResponse.json()) as { nonce: string };
  const admin = user.admin ?? false;
  const mac = createHmac("sha1", sharedSecret)
    .update([nonce, user.username, user.password, admin ? "admin" : "notadmin"].join("\0"))
    .digest("hex");
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ nonce, username: user.username, password: user.password, admin, mac }),
  });
  const body = (await response.json()) as RegisteredUser & { error?: string };
  if (!response.ok)
    throw new Error(`registering ${user.username} failed: ${response.status} ${body.error ?? ""}`);
  return body;
}
