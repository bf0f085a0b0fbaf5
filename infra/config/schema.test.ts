import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PROJECT_DIR } from "../render/run.ts";
import { flattenStackConfig } from "../render/stack-file.ts";
import { rawProjectConfig } from "./load.ts";
import { containerResources, parseStackConfig } from "./schema.ts";

const stackFile = async (stack: string) => {
  const path = join(PROJECT_DIR, `Pulumi.${stack}.yaml`);
  return rawProjectConfig(flattenStackConfig(parse(await readFile(path, "utf8")), path));
};
const errorOf = (raw: Record<string, unknown>) => {
  try {
    parseStackConfig(raw);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("expected the config to be refused");
};

describe("parseStackConfig", () => {
  it("accepts both stack files and fills the defaults", async () => {
    const staging = parseStackConfig(await stackFile("staging"));
    expect(staging).toMatchObject({
      serverName: "staging.nova.internal",
      namespace: "nova-staging",
      matrixEnabled: false,
      database: { kind: "in-cluster", host: "postgres", port: 5432, name: "synapse", user: "synapse" },
      rotation: {},
    });
    expect(staging.ingress).toBeUndefined();
    const prod = parseStackConfig(await stackFile("prod"));
    expect(prod).toMatchObject({
      serverName: "chat.nova.com",
      database: { kind: "cloudsql" },
      ingress: { host: "chat.nova.com" },
    });
  });

  it("names the key and the expectation for each bad value, all at once", async () => {
    const raw = await stackFile("staging");
    const synapse = raw.synapse as {
      storage: Record<string, unknown>;
      resources: { limits: Record<string, unknown> };
    };
    const message = errorOf({
      ...raw,
      serverName: "Staging.Nova.Internal",
      synapse: {
        ...synapse,
        storage: { size: "10 gigs" },
        resources: { ...synapse.resources, limits: { memory: "lots" } },
      },
    });
    expect(message).toContain("nova-matrix:serverName: expected a lower-case DNS name");
    expect(message).toContain("nova-matrix:synapse.storage.size: expected a storage size in Mi, Gi or Ti");
    expect(message).toContain("nova-matrix:synapse.resources.limits.memory: expected a Kubernetes quantity");
  });

  it("reports a missing key, a misspelt key and a wrong database kind", async () => {
    const { serverName: _missing, ...raw } = await stackFile("staging");
    expect(errorOf(raw)).toContain("nova-matrix:serverName: is required");
    expect(errorOf({ ...(await stackFile("staging")), servername: "x" })).toContain(
      "nova-matrix:servername: unknown key",
    );
    expect(errorOf({ ...(await stackFile("staging")), database: { kind: "mysql" } })).toContain(
      'nova-matrix:database.kind: expected kind "in-cluster" or "cloudsql"',
    );
  });

  it("requires an ingress for a Cloud SQL (prod) stack", async () => {
    const { ingress: _ingress, ...raw } = await stackFile("prod");
    expect(errorOf(raw)).toContain("nova-matrix:ingress: a cloudsql (prod) stack needs an ingress");
  });

  it("refuses a pool whose min exceeds its max", async () => {
    const raw = await stackFile("staging");
    expect(
      errorOf({ ...raw, synapse: { ...(raw.synapse as object), databasePool: { min: 9, max: 2 } } }),
    ).toContain("nova-matrix:synapse.databasePool: expected min <= max");
  });
});

describe("containerResources", () => {
  it("passes the requests and the memory limit through, and sets a CPU limit only where the stack sets one", () => {
    const requests = { cpu: "100m", memory: "256Mi" };
    expect(containerResources({ requests, limits: { memory: "1Gi" } })).toStrictEqual({
      requests,
      limits: { memory: "1Gi" },
    });
    expect(containerResources({ requests, limits: { memory: "1Gi", cpu: undefined } })).toStrictEqual({
      requests,
      limits: { memory: "1Gi" },
    });
    expect(containerResources({ requests, limits: { cpu: "2", memory: "1Gi" } })).toStrictEqual({
      requests,
      limits: { memory: "1Gi", cpu: "2" },
    });
  });
});

describe("observability config", () => {
  it("is optional, defaults the bridge workload, and names a bad value", async () => {
    // Both stacks ship monitoring on; the schema still accepts a stack file without it.
    const { observability: shipped, ...raw } = await stackFile("staging");
    expect(shipped).toBeDefined();
    expect(parseStackConfig(raw).observability).toBeUndefined();
    const configured = parseStackConfig({
      ...raw,
      observability: { scrapeStyle: "gmp", runbookBaseUrl: "https://example.com/docs/runbooks.md" },
    });
    expect(configured.observability).toMatchObject({
      scrapeInterval: "30s",
      grafanaDashboard: false,
      bridge: { name: "nova-bridge", metricsPath: "/metrics" },
    });
    const message = errorOf({
      ...raw,
      observability: { scrapeStyle: "datadog", runbookBaseUrl: "runbooks.md" },
    });
    expect(message).toContain("nova-matrix:observability.scrapeStyle:");
    expect(message).toContain(
      "nova-matrix:observability.runbookBaseUrl: expected the absolute URL of docs/runbooks.md",
    );
  });
});

describe("network config", () => {
  it("is required, with the pod ranges, and the Postgres pods exactly when the database is in the cluster", async () => {
    const staging = await stackFile("staging");
    const prod = await stackFile("prod");
    expect(parseStackConfig(staging).network).toMatchObject({
      podRanges: ["10.4.0.0/14"],
      postgresSelector: { app: "postgres" },
    });
    const { network: _n, ...withoutNetwork } = staging;
    expect(errorOf(withoutNetwork)).toContain("nova-matrix:network: is required");
    const stagingNetwork = staging.network as Record<string, unknown>;
    const { postgresSelector: _p, ...noPostgres } = stagingNetwork;
    expect(errorOf({ ...staging, network: noPostgres })).toContain(
      "nova-matrix:network.postgresSelector: is required with an in-cluster database",
    );
    expect(
      errorOf({ ...prod, network: { ...(prod.network as object), postgresSelector: { app: "postgres" } } }),
    ).toContain("nova-matrix:network.postgresSelector: only for an in-cluster database");
    expect(errorOf({ ...staging, network: { ...stagingNetwork, podRanges: [] } })).toContain(
      "nova-matrix:network.podRanges: list the cluster's pod IPv4 ranges",
    );
    expect(errorOf({ ...staging, network: { ...stagingNetwork, podRanges: ["10.4.0.0/33"] } })).toContain(
      "nova-matrix:network.podRanges.0: expected an IPv4 CIDR",
    );
  });
});

describe("backup config", () => {
  it("is on in both stack files: dumps and media in staging, media only beside Cloud SQL in prod", async () => {
    const staging = parseStackConfig(await stackFile("staging"));
    expect(staging.backup).toMatchObject({
      project: staging.cluster.project,
      bucket: { retentionDays: 30, noncurrentRetentionDays: 7 },
    });
    const prod = parseStackConfig(await stackFile("prod"));
    expect(prod.backup).toMatchObject({ project: prod.cluster.project, bucket: { retentionDays: 14 } });
    expect(prod.backup?.databaseSchedule).toBeUndefined();
  });

  it("names a bad bucket, a project other than the cluster's, and a dump schedule beside Cloud SQL", async () => {
    const staging = await stackFile("staging");
    const stagingBackup = staging.backup as Record<string, unknown>;
    expect(
      errorOf({ ...staging, backup: { ...stagingBackup, bucket: { name: "Bad Bucket", location: "EU" } } }),
    ).toContain("nova-matrix:backup.bucket.name: expected a GCS bucket name");
    expect(errorOf({ ...staging, backup: { ...stagingBackup, project: "nova-other-123" } })).toContain(
      "nova-matrix:backup.project: expected the cluster's project (cluster.project: nova-chat-staging)",
    );
    // A dump schedule is fine in-cluster...
    expect(
      parseStackConfig({ ...staging, backup: { ...stagingBackup, databaseSchedule: "15 2 * * *" } }).backup
        ?.databaseSchedule,
    ).toBe("15 2 * * *");
    expect(errorOf({ ...staging, backup: { ...stagingBackup, mediaSchedule: "nightly at 3" } })).toContain(
      "nova-matrix:backup.mediaSchedule: expected a five-field cron expression",
    );
    // ...and refused beside Cloud SQL, which keeps both databases itself, with what to set instead.
    const prod = await stackFile("prod");
    const message = errorOf({
      ...prod,
      backup: { ...(prod.backup as object), databaseSchedule: "0 3 * * *" },
    });
    expect(message).toContain("nova-matrix:backup.databaseSchedule: not with a cloudsql database");
    expect(message).toContain("database.backupStartTime");
  });
});

describe("stack files", () => {
  it("hold no secrets: a secure value is refused", () => {
    expect(() =>
      flattenStackConfig({ config: { "nova-matrix:x": { secure: "AAAA" } } }, "Pulumi.x.yaml"),
    ).toThrow(/nova-matrix:x is a secret/);
  });

  it("pass strings through and JSON-encode structured values, as Pulumi does", () => {
    expect(
      rawProjectConfig(
        flattenStackConfig(
          { config: { "nova-matrix:a": "chat.nova.com", "nova-matrix:b": { c: 1 }, "gcp:project": "p" } },
          "f",
        ),
      ),
    ).toEqual({ a: "chat.nova.com", b: { c: 1 } });
  });
});
