// The service's settings as the process reads them: what is set reaches the service, side by side (bad values are
// refused in bridge/test/bad-config.test.ts).
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS } from "./context.ts";
import { DEFAULT_RETENTION } from "./pruner.ts";
import { serviceSettingsFromEnv } from "./settings.ts";

const required = {
  BRIDGE_API_TOKEN: randomBytes(32).toString("base64url"),
  BRIDGE_WS_SIGNING_KEY: randomBytes(32).toString("base64url"),
};

describe("service settings from the environment", () => {
  it("keeps every limit that is set, the upload size beside the rate and connection limits", () => {
    const settings = serviceSettingsFromEnv({
      ...required,
      BRIDGE_MAX_UPLOAD_BYTES: "1048576",
      BRIDGE_RATE_LIMIT_SERVICE_PER_MINUTE: "120",
      BRIDGE_WS_MAX_PER_USER: "2",
    });
    expect(settings.limits).toEqual({
      uploadBodyBytes: 1_048_576,
      serviceRequestsPerMinute: 120,
      wsMaxPerUser: 2,
    });
  });

  it("leaves what is not set to the defaults", () => {
    const settings = serviceSettingsFromEnv({ ...required, BRIDGE_SYNC_POLL_MS: "" });
    expect(settings.limits).toEqual({});
    expect(settings.syncPollMs).toBeUndefined();
    expect(settings.backfillPageSize).toBeUndefined();
    expect(DEFAULT_LIMITS.uploadBodyBytes).toBe(50 * 1024 * 1024);
  });

  it("reads the retention windows in days and the pruning job's tuning; unset ones keep the defaults", () => {
    const settings = serviceSettingsFromEnv({
      ...required,
      BRIDGE_IDEMPOTENCY_RETENTION_DAYS: "2",
      BRIDGE_PRUNE_BATCH_SIZE: "50",
      BRIDGE_PRUNE_INTERVAL_MS: "60000",
    });
    expect(settings.retention).toEqual({ sendRecordsMs: 2 * 86_400_000, batchSize: 50 });
    expect(settings.pruneIntervalMs).toBe(60_000);
    expect(serviceSettingsFromEnv({ ...required, BRIDGE_EVENT_LOG_RETENTION_DAYS: "90" }).retention).toEqual({
      eventLogMs: 90 * 86_400_000,
    });
    expect(DEFAULT_RETENTION).toEqual({
      sendRecordsMs: 7 * 86_400_000,
      eventLogMs: 30 * 86_400_000,
      batchSize: 1000,
    });
  });

  it("reads the sync loop's tuning", () => {
    const settings = serviceSettingsFromEnv({
      ...required,
      BRIDGE_SYNC_POLL_MS: "500",
      BRIDGE_BACKFILL_PAGE_SIZE: "16",
    });
    expect(settings).toMatchObject({ syncPollMs: 500, backfillPageSize: 16 });
  });
});
