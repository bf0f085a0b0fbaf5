import { ConnectionError, HTTPError, MatrixError } from "matrix-js-sdk/lib/http-api/index.js";

export { ConnectionError, HTTPError, MatrixError };

/** The homeserver did not answer (down, wrong URL, network). */
export class HomeserverUnreachableError extends Error {
  override name = "HomeserverUnreachableError";
}

/** The homeserver answered but refused the access token, or it is not the appservice token for the service user. */
export class TokenRejectedError extends Error {
  override name = "TokenRejectedError";
}

export function errcodeOf(error: unknown): string | undefined {
  return error instanceof MatrixError ? error.errcode : undefined;
}

export function statusOf(error: unknown): number | undefined {
  return error instanceof HTTPError ? error.httpStatus : undefined;
}
