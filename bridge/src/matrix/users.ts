import { LRUCache } from "lru-cache";
import type { Logger } from "pino";
import type { MatrixClient } from "./client.ts";
import {
  ConnectionError,
  errcodeOf,
  HomeserverUnreachableError,
  statusOf,
  TokenRejectedError,
} from "./errors.ts";

/**
 * Registers a user in the appservice's exclusive namespace. Idempotent: `M_USER_IN_USE` means it already exists.
 * `inhibit_login` so no device or access token is created for it (the appservice token acts for it).
 */
export async function registerAppserviceUser(client: MatrixClient, localpart: string): Promise<void> {
  try {
    await client.post(
      "/register",
      { type: "m.login.application_service", username: localpart, inhibit_login: true },
      { query: { kind: "user" } },
    );
  } catch (error) {
    if (errcodeOf(error) !== "M_USER_IN_USE") throw error;
  }
}

/** Ghosts known to be registered, per process. */
const REMEMBERED_GHOSTS = 100_000;

/** Registers ghost users on first use, once per process (concurrent callers share one request). */
export class GhostRegistry {
  readonly #client: MatrixClient;
  // Bounded: a forgotten ghost is registered again on its next use, which Synapse answers M_USER_IN_USE (fine).
  readonly #registered = new LRUCache<string, Promise<void>>({ max: REMEMBERED_GHOSTS });
  constructor(client: MatrixClient) {
    this.#client = client;
  }
  ensure(localpart: string): Promise<void> {
    let pending = this.#registered.get(localpart);
    if (!pending) {
      pending = registerAppserviceUser(this.#client, localpart);
      pending.catch(() => this.#registered.delete(localpart));
      this.#registered.set(localpart, pending);
    }
    return pending;
  }
}

/**
 * Start-up check: registers the service user if needed, then `whoami` as it must answer with that user.
 * Fails fast (no retries) with an error that says what is wrong, never with the token.
 */
export async function checkServiceUser(
  client: MatrixClient,
  homeserverUrl: string,
  serviceLocalpart: string,
  logger: Logger,
): Promise<void> {
  const once = { retry: false as const, timeoutMs: 10_000 };
  try {
    await client.post(
      "/register",
      { type: "m.login.application_service", username: serviceLocalpart, inhibit_login: true },
      once,
    );
    logger.info({ user: client.serviceUser }, "registered the service user");
  } catch (error) {
    if (errcodeOf(error) !== "M_USER_IN_USE") throw explainStartupError(error, homeserverUrl);
  }
  let whoami: { user_id?: string };
  try {
    whoami = await client.get<{ user_id?: string }>("/account/whoami", once);
  } catch (error) {
    throw explainStartupError(error, homeserverUrl);
  }
  if (whoami.user_id !== client.serviceUser)
    throw new TokenRejectedError(
      `whoami answered ${whoami.user_id ?? "nothing"} instead of MATRIX_SERVICE_USER ${client.serviceUser}`,
    );
}

function explainStartupError(error: unknown, homeserverUrl: string): Error {
  const code = errcodeOf(error);
  if (error instanceof ConnectionError || (error as Error)?.name === "TimeoutError")
    return new HomeserverUnreachableError(
      `the homeserver at MATRIX_HOMESERVER_URL (${homeserverUrl}) is unreachable: ${(error as Error).message}`,
    );
  const status = statusOf(error);
  if (code === "M_UNKNOWN_TOKEN" || status === 401)
    return new TokenRejectedError("the homeserver rejected MATRIX_ACCESS_TOKEN (M_UNKNOWN_TOKEN)");
  if (code === "M_EXCLUSIVE" || code === "M_FORBIDDEN" || status === 403)
    return new TokenRejectedError(
      `MATRIX_ACCESS_TOKEN is not the appservice token for MATRIX_SERVICE_USER (${code ?? status}: ${(error as Error).message})`,
    );
  return error instanceof Error ? error : new Error(String(error));
}
