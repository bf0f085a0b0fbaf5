import { ConnectionError, MatrixError } from "matrix-js-sdk/lib/http-api/index.js";
import { describe, expect, it } from "vitest";
import { backoffDelay, type RetryPolicy, retryDecision } from "./retry.ts";

const policy: RetryPolicy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000, maxRateLimitWaitMs: 5000 };
const top = () => 0.999999;
const half = () => 0;

describe("retry policy", () => {
  it("doubles the backoff per attempt up to the cap, jittered between 50% and 100%", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, top))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    expect([1, 2, 3].map((n) => backoffDelay(n, policy, half))).toEqual([50, 100, 200]);
  });

  it("waits as long as a 429 asks, by Retry-After header first, then retry_after_ms", () => {
    const header = new MatrixError(
      { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 9 },
      429,
      undefined,
      undefined,
      new Headers({ "Retry-After": "2" }),
    );
    expect(retryDecision(header, 1, policy)).toMatchObject({ retry: true, delayMs: 2000 });
    const body = new MatrixError({ errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 1234 }, 429);
    expect(retryDecision(body, 1, policy)).toMatchObject({ retry: true, delayMs: 1234 });
    const long = new MatrixError({ errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 600_000 }, 429);
    expect(retryDecision(long, 1, policy)).toMatchObject({ retry: true, delayMs: 5000 });
  });

  it("retries 5xx and network errors, never other 4xx, and stops at maxAttempts", () => {
    expect(retryDecision(new MatrixError({}, 502), 2, policy, top)).toMatchObject({
      retry: true,
      delayMs: 200,
    });
    expect(retryDecision(new ConnectionError("fetch failed"), 1, policy, top)).toMatchObject({ retry: true });
    expect(retryDecision(new MatrixError({ errcode: "M_FORBIDDEN" }, 403), 1, policy)).toEqual({
      retry: false,
    });
    expect(retryDecision(new Error("bug"), 1, policy)).toEqual({ retry: false });
    expect(retryDecision(new MatrixError({}, 500), 5, policy)).toEqual({ retry: false });
  });
});
