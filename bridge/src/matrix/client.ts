import {
  ClientPrefix,
  type HttpApiEvent,
  type HttpApiEventHandlerMap,
  type IHttpOpts,
  MatrixHttpApi,
  Method,
} from "matrix-js-sdk/lib/http-api/index.js";
import { TypedEventEmitter } from "matrix-js-sdk/lib/models/typed-event-emitter.js";
import type { QueryDict } from "matrix-js-sdk/lib/utils.js";
import type { Logger } from "pino";
import type { Secret } from "../config/secret.ts";
import { ConnectionError } from "./errors.ts";
import { DEFAULT_RETRY, type RetryPolicy, retryDecision } from "./retry.ts";

export { ClientPrefix, MediaPrefix, Method } from "matrix-js-sdk/lib/http-api/index.js";

export interface MatrixClientOptions {
  homeserverUrl: string;
  /** The appservice's `as_token`. */
  accessToken: Secret;
  /** The user every request acts as unless it names another (`?user_id=` identity assertion). */
  serviceUser: string;
  logger: Logger;
  retry?: RetryPolicy;
  /**
   * Each attempt of a request without its own `timeoutMs` is given up after this long (default 30 s): a homeserver
   * that accepts connections and never answers must not hold a send, or a WebSocket's membership check, forever.
   */
  requestTimeoutMs?: number;
}

/** The default of {@link MatrixClientOptions.requestTimeoutMs}. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface RequestOptions {
  query?: QueryDict;
  body?: unknown;
  /** The user this request acts as; default the service user. */
  as?: string;
  /** Default `/_matrix/client/v3`. */
  prefix?: string;
  headers?: Record<string, string>;
  /** Retry policy for this request; `false` for a single attempt. */
  retry?: RetryPolicy | false;
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Asked before every retry: whether the failed attempt took effect after all (its answer was lost). A value is
   * returned instead of repeating the request; a failure here counts as a failed attempt (never repeat blind).
   */
  findEarlier?: () => Promise<unknown>;
}

/**
 * The Matrix side's HTTP client: matrix-js-sdk's `MatrixHttpApi` (auth header, JSON, `MatrixError` parsing) with
 * the appservice identity assertion on every request and retries (429 honouring the homeserver's wait, 5xx and
 * network errors with capped exponential backoff). A retried request is byte-for-byte the same, so a send keeps
 * its transaction id.
 */
export class MatrixClient {
  readonly serviceUser: string;
  readonly #http: MatrixHttpApi<IHttpOpts & { onlyData: true }>;
  readonly #retry: RetryPolicy;
  readonly #logger: Logger;
  readonly #homeserverUrl: string;
  readonly #accessToken: Secret;
  readonly #timeoutMs: number;

  constructor(options: MatrixClientOptions) {
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.serviceUser = options.serviceUser;
    this.#homeserverUrl = options.homeserverUrl.replace(/\/+$/, "");
    this.#accessToken = options.accessToken;
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#logger = options.logger;
    const serviceUser = options.serviceUser;
    // The SDK does not put its query params on every request it makes; this puts the assertion on all of them.
    const assertingFetch: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (!url.searchParams.has("user_id")) url.searchParams.set("user_id", serviceUser);
      return fetch(url, init);
    };
    this.#http = new MatrixHttpApi(new TypedEventEmitter<HttpApiEvent, HttpApiEventHandlerMap>(), {
      baseUrl: options.homeserverUrl,
      prefix: ClientPrefix.V3,
      accessToken: options.accessToken.reveal(),
      useAuthorizationHeader: true,
      onlyData: true,
      fetchFn: assertingFetch,
    });
  }

  async request<T>(method: Method, path: string, options: RequestOptions = {}): Promise<T> {
    const policy =
      options.retry === false ? { ...this.#retry, maxAttempts: 1 } : (options.retry ?? this.#retry);
    const query: QueryDict = { ...options.query, ...(options.as ? { user_id: options.as } : {}) };
    for (let attempt = 1; ; attempt++) {
      try {
        if (attempt > 1 && options.findEarlier) {
          const earlier = await options.findEarlier();
          if (earlier !== undefined) return earlier as T;
        }
        return await this.#http.authedRequest<T>(
          method,
          path,
          query,
          options.body as never, // a JSON object or a binary body; the SDK encodes objects
          {
            prefix: options.prefix ?? ClientPrefix.V3,
            priority: "auto",
            ...(options.headers ? { headers: options.headers } : {}),
            localTimeoutMs: options.timeoutMs ?? this.#timeoutMs,
            ...(options.signal ? { abortSignal: options.signal } : {}),
          },
        );
      } catch (thrown) {
        if (options.signal?.aborted) throw thrown;
        // The SDK reports its own timeout as an abort: it is a homeserver that did not answer (retried as such).
        const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
        const error =
          (thrown as Error).name === "AbortError"
            ? new ConnectionError(`the homeserver did not answer within ${timeoutMs} ms`, thrown as Error)
            : thrown;
        const decision = retryDecision(error, attempt, policy);
        if (!decision.retry) throw error;
        this.#logger.warn(
          { method, path, attempt, delayMs: decision.delayMs },
          `retrying: ${decision.reason}`,
        );
        await abortableSleep(decision.delayMs, options.signal);
      }
    }
  }

  /**
   * A GET whose body is not JSON (media): the homeserver's response as it is, for the caller to stream. One
   * attempt, no retry (a stream cannot be replayed to the caller); the identity assertion as on every request.
   */
  async raw(
    path: string,
    options: {
      prefix: string;
      query?: Record<string, string>;
      headers?: Record<string, string>;
      signal?: AbortSignal;
    },
  ): Promise<Response> {
    const url = new URL(`${this.#homeserverUrl}${options.prefix}${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, value);
    url.searchParams.set("user_id", this.serviceUser);
    // The answer's headers must come within the timeout; the body then streams for as long as it takes.
    const headersDue = new AbortController();
    const timer = setTimeout(
      () => headersDue.abort(new Error(`no answer within ${this.#timeoutMs} ms`)),
      this.#timeoutMs,
    );
    try {
      return await fetch(url, {
        headers: { ...options.headers, authorization: `Bearer ${this.#accessToken.reveal()}` },
        signal: options.signal ? AbortSignal.any([options.signal, headersDue.signal]) : headersDue.signal,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>(Method.Get, path, options);
  }
  post<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>(Method.Post, path, { ...options, body });
  }
  put<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>(Method.Put, path, { ...options, body });
  }
}

export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `encodeURIComponent` for path segments (room ids, aliases, event ids, transaction ids). */
export const seg = encodeURIComponent;
