import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostgresEventStore } from "@nova-matrix/bridge";
import { type PostgresServer, postgresBinDir, run, startPostgres } from "@nova-matrix/dev/harness";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHAT_SERVICE_CONFIG_MAP, CHAT_SERVICE_TOKEN_SECRET } from "../chat-service/index.ts";
import { bridgeDeployConfigSchema, parseImage } from "../config/bridge.ts";
import { scramSha256Verifier } from "../database/scram.ts";
import { databaseSetupPodSpec } from "../database/setup-spec.ts";
import { DATABASE_SETUP_SQL, VERIFIER_ENV } from "../database/sql.ts";
import { kubernetesProblems } from "../testing/kubernetes-schema.ts";
import {
  BRIDGE_DB_SETUP_NAME,
  BRIDGE_LABELS,
  BRIDGE_SECRET,
  bridgeDatabaseUrl,
  bridgeDeploymentSpec,
  bridgePodSpec,
  bridgeServiceSpec,
  mebibytes,
  nodeHeapOptions,
  uploadBytes,
} from "./spec.ts";

const config = bridgeDeployConfigSchema.parse({
  image: `europe-docker.pkg.dev/nova/images/nova-bridge@sha256:${"b".repeat(64)}`,
});
const podInput = (databaseTls: boolean) => ({
  image: config.image,
  resources: config.resources,
  chatServiceConfigMap: CHAT_SERVICE_CONFIG_MAP,
  chatServiceTokenSecret: CHAT_SERVICE_TOKEN_SECRET,
  databaseTls,
  maxUploadSize: "50M",
  devPages: false,
});
const object = (apiVersion: string, kind: string, name: string, spec: unknown) => ({
  apiVersion,
  kind,
  metadata: { name, namespace: "nova-staging", labels: { ...BRIDGE_LABELS } },
  spec,
});
const jobPod = (kind: "in-cluster" | "cloudsql") =>
  databaseSetupPodSpec({
    host: "postgres",
    port: 5432,
    database: config.database,
    admin:
      kind === "in-cluster"
        ? {
            kind,
            secret: {
              name: "postgres-credentials",
              usernameKey: "POSTGRES_USER",
              passwordKey: "POSTGRES_PASSWORD",
            },
          }
        : { kind },
    scriptConfigMap: BRIDGE_DB_SETUP_NAME,
    setupSecret: BRIDGE_DB_SETUP_NAME,
  });

describe("bridge Kubernetes objects", () => {
  it("are valid against the Kubernetes schema, strictly (in-cluster and Cloud SQL variants)", () => {
    for (const tls of [false, true]) {
      expect(
        kubernetesProblems(
          object("apps/v1", "Deployment", "nova-bridge", bridgeDeploymentSpec(podInput(tls))),
        ),
      ).toEqual([]);
    }
    expect(kubernetesProblems(object("v1", "Service", "nova-bridge", bridgeServiceSpec()))).toEqual([]);
    for (const kind of ["in-cluster", "cloudsql"] as const) {
      const job = object("batch/v1", "Job", "nova-bridge-db-setup-x", { template: { spec: jobPod(kind) } });
      expect(kubernetesProblems(job), kind).toEqual([]);
    }
  });

  it("runs one active, non-root, probed replica with its settings from the chat service's objects and its Secret", () => {
    const spec = bridgeDeploymentSpec(podInput(false));
    expect(spec.replicas).toBe(1);
    expect(spec.strategy).toEqual({ type: "Recreate" });
    const pod = bridgePodSpec(podInput(false));
    const container = (pod.containers as unknown[])[0] as Record<string, unknown> & {
      envFrom: unknown[];
      securityContext: Record<string, unknown>;
      readinessProbe: { httpGet: { path: string } };
      livenessProbe: { httpGet: { path: string } };
      ports: { name: string }[];
      resources: unknown;
      env: { name: string; value: string }[];
    };
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1000,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(container.readinessProbe.httpGet.path).toBe("/readyz");
    expect(container.livenessProbe.httpGet.path).toBe("/healthz");
    expect(container.ports.map((p) => p.name)).toEqual(["http", "metrics"]);
    expect(container.envFrom).toEqual([
      { configMapRef: { name: "realtime-chat-service-config" } },
      { secretRef: { name: "nova-matrix-service-token" } },
      { secretRef: { name: BRIDGE_SECRET } },
    ]);
    expect(container.resources).toEqual({
      requests: { cpu: "100m", memory: "256Mi" },
      limits: { memory: "512Mi" },
    });
    // The heap is sized for the container, not the node (a quarter of the 512Mi limit).
    expect(container.env).toContainEqual({
      name: "NODE_OPTIONS",
      value: "--max-semi-space-size=2 --max-old-space-size=128",
    });
    // No secret value is in the pod spec: everything secret comes through envFrom.
    expect(JSON.stringify(pod)).not.toMatch(/password|token=/i);
  });

  it("accepts uploads up to Synapse's max_upload_size (read as Synapse reads it) and sets the pages switch", () => {
    const env = (input: ReturnType<typeof podInput>) =>
      Object.fromEntries(
        (
          (bridgePodSpec(input).containers as unknown[])[0] as { env: { name: string; value: string }[] }
        ).env.map((e) => [e.name, e.value]),
      );
    expect(env(podInput(false))).toMatchObject({
      BRIDGE_MAX_UPLOAD_BYTES: "52428800",
      BRIDGE_DEV_PAGES: "false",
    });
    expect(env({ ...podInput(false), maxUploadSize: "2G", devPages: true })).toMatchObject({
      BRIDGE_MAX_UPLOAD_BYTES: String(2 * 2 ** 30),
      BRIDGE_DEV_PAGES: "true",
    });
    // Off unless a stack sets it (prod does not).
    expect(bridgeDeployConfigSchema.parse({ image: config.image }).devPages).toBe(false);
    expect(uploadBytes("512K")).toBe(512 * 1024);
    expect(uploadBytes("1000")).toBe(1000);
    expect(() => uploadBytes("50MB")).toThrow(/synapse.maxUploadSize "50MB": expected a size such as 50M/);
  });

  it("reads memory limits in any Kubernetes unit and sizes the heap from them", () => {
    expect(mebibytes("512Mi")).toBe(512);
    expect(mebibytes("1Gi")).toBe(1024);
    expect(mebibytes("1.5Gi")).toBe(1536);
    expect(mebibytes(String(256 * 2 ** 20))).toBe(256);
    expect(mebibytes("1G")).toBeCloseTo(953.67, 2);
    expect(nodeHeapOptions("2Gi")).toBe("--max-semi-space-size=2 --max-old-space-size=512");
    // A small limit still leaves V8 a workable heap.
    expect(nodeHeapOptions("128Mi")).toBe("--max-semi-space-size=2 --max-old-space-size=64");
    expect(() => mebibytes("lots")).toThrow('memory "lots": expected a quantity such as 512Mi or 1Gi');
    expect(() => mebibytes("500m")).toThrow(/expected a quantity/);
  });

  it("takes the image by digest (or the bare repository before the first build), never a tag", () => {
    const image = (value: string) => bridgeDeployConfigSchema.safeParse({ image: value });
    const repository = "europe-docker.pkg.dev/nova-chat-prod/nova/nova-bridge";
    expect(image(`${repository}@sha256:${"a".repeat(64)}`).success).toBe(true);
    expect(parseImage(`${repository}@sha256:${"a".repeat(64)}`)).toEqual({
      repository,
      digest: `sha256:${"a".repeat(64)}`,
    });
    expect(parseImage(repository)).toEqual({ repository });
    expect(parseImage("localhost:5000/nova-bridge")).toEqual({ repository: "localhost:5000/nova-bridge" });
    for (const bad of [
      `${repository}:0.1.0`,
      `${repository}:latest`,
      `${repository}@sha256:${"a".repeat(63)}`,
      `${repository}:0.1.0@sha256:${"a".repeat(64)}`,
      "Nova/Bridge",
    ]) {
      expect(image(bad).error?.issues[0]?.message, bad).toMatch(/deployed by digest, never by tag/);
      expect(parseImage(bad), bad).toBeUndefined();
    }
    expect(
      bridgeDeployConfigSchema.safeParse({ image: repository, replicas: 2 }).error?.issues[0]?.code,
    ).toBe("unrecognized_keys");
  });

  it("connects with TLS verified against the server's CA on Cloud SQL", () => {
    const url = new URL(
      bridgeDatabaseUrl({
        host: "10.0.0.5",
        port: 5432,
        name: "nova_bridge",
        user: "nova_bridge",
        password: "p",
        tls: true,
      }),
    );
    expect(Object.fromEntries(url.searchParams)).toEqual({
      sslmode: "verify-ca",
      sslrootcert: "/db-ca/ca.pem",
      uselibpqcompat: "true",
    });
    const pod = bridgePodSpec(podInput(true));
    expect(pod.volumes).toEqual([
      {
        name: "database-ca",
        secret: {
          secretName: "matrix-synapse-db-setup",
          defaultMode: 0o444,
          items: [{ key: "ca.pem", path: "ca.pem" }],
        },
      },
    ]);
  });
});

describeWithHarness("the bridge's database setup Job on the real PostgreSQL 15", () => {
  let postgres: PostgresServer;
  let workDir: string;

  beforeAll(async () => {
    postgres = await startPostgres();
    workDir = await mkdtemp(join(tmpdir(), "bridge-db-setup-"));
  });
  afterAll(async () => {
    await postgres?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("creates the role and database idempotently, and the bridge's store migrates there with its URL", async () => {
    const password = randomBytes(24).toString("base64url").replace(/[-_]/g, "x");
    const pod = jobPod("in-cluster");
    const container = (pod.containers as unknown[])[0] as {
      command: string[];
      env: { name: string; value?: string }[];
    };
    const script = join(workDir, "setup.sql");
    await writeFile(script, DATABASE_SETUP_SQL);
    const [psql, ...args] = container.command;
    expect(psql).toBe("psql");
    const plainEnv = Object.fromEntries(
      container.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]),
    );
    const psqlPath = join(await postgresBinDir(), "psql");
    const runJob = () =>
      run(
        psqlPath,
        args.map((arg) => (arg === "/setup/setup.sql" ? script : arg)),
        {
          env: {
            PATH: process.env.PATH,
            ...plainEnv,
            PGHOST: postgres.host,
            PGPORT: String(postgres.port),
            PGUSER: postgres.adminUser,
            PGPASSWORD: postgres.adminPassword,
            [VERIFIER_ENV]: scramSha256Verifier(password),
          },
        },
      );
    await runJob();
    await runJob();
    const store = new PostgresEventStore(
      bridgeDatabaseUrl({
        host: postgres.host,
        port: postgres.port,
        ...config.database,
        password,
        tls: false,
      }),
    );
    try {
      await store.migrate();
      expect(await store.syncToken()).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});
