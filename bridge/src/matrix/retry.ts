import { ConnectionError, HTTPError, safeGetRetryAfterMs } from "matrix-js-sdk/lib/http-api/index.js";

/** How a request is retried. Every attempt of one send reuses its transaction id, so retries never duplicate. */
export interface RetryPolicy {
  /** Attempts in all, including the first; `Infinity` for the sync loop. */
  maxAttempts: number;
  /** First backoff for 5xx and network errors; it doubles each attempt... */
  baseDelayMs: number;
  /** ...up to this cap. */
  maxDelayMs: number;
  /** A 429's Retry-After / retry_after_ms is honoured up to this; a longer wait is capped to it. */
  maxRateLimitWaitMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  maxRateLimitWaitMs: 60_000,
};

export type RetryDecision = { retry: false } | { retry: true; delayMs: number; reason: string };

/** Capped exponential backoff with jitter in [50%, 100%] so many callers do not retry in lock step. */
export function backoffDelay(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (0.5 + random() / 2));
}

/**
 * Whether a failed attempt (1-based `attempt` attempts made so far) is retried, and after how long:
 * 429 waits as long as the homeserver asks (`Retry-After`, else `retry_after_ms`); 5xx and network errors back off;
 * anything else (4xx: the request itself is wrong) is final.
 */
export function retryDecision(
  error: unknown,
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): RetryDecision {
  if (attempt >= policy.maxAttempts) return { retry: false };
  if (error instanceof HTTPError && error.httpStatus === 429) {
    const asked = safeGetRetryAfterMs(error, -1);
    const delayMs =
      asked >= 0 ? Math.min(asked, policy.maxRateLimitWaitMs) : backoffDelay(attempt, policy, random);
    return { retry: true, delayMs, reason: `rate limited (429), waiting ${delayMs} ms` };
  }
  if (error instanceof HTTPError && (error.httpStatus ?? 0) >= 500)
    return {
      retry: true,
      delayMs: backoffDelay(attempt, policy, random),
      reason: `HTTP ${error.httpStatus}`,
    };
  if (error instanceof ConnectionError)
    return { retry: true, delayMs: backoffDelay(attempt, policy, random), reason: error.message };
  return { retry: false };
}
