// The staging stack, run for real under Pulumi's mock runtime, checked object by object; then its rendered
// Synapse config started on the real Synapse.

import { SERVICE_LOCALPART } from "@nova-matrix/contracts";
import { type PostgresServer, startPostgres } from "@nova-matrix/dev/harness";
import { describeWithHarness, harnessChroot } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runStack, type StackRun } from "./render/run.ts";
import { judgeHarnessVersion } from "./synapse/version.ts";
import {
  objectData,
  type RenderedSynapse,
  startRenderedSynapse,
  whoamiAsServiceUser,
} from "./testing/rendered-synapse.ts";
import {
  expectAdoptionSafe,
  expectBackupsOn,
  expectDatabaseJob,
  expectHardenedSynapse,
  expectNoSecretLeaks,
  expectOperationsOn,
  expectOutputs,
  expectRestrictedPods,
  expectValidKubernetesObjects,
  findObject,
  kubernetesObjects,
} from "./testing/stack-invariants.ts";

let run: StackRun;
beforeAll(async () => {
  run = await runStack("staging");
});

describe("staging stack under mocks", () => {
  it("validates every Kubernetes object against the API schemas, strictly", () => {
    expectValidKubernetesObjects(run, "nova-staging");
  });

  it("ships with monitoring on: scrape objects and alert rules", () => {
    expectOperationsOn(run, { workers: false });
  });

  it("keeps what existed before: the media volume protected, realtime-chat-service's objects patched, not owned", () => {
    expectAdoptionSafe(run);
  });

  it("leaks no secret into a ConfigMap, an annotation or a plain output", () => {
    expectNoSecretLeaks(run);
  });

  it("exports the documented outputs", () => {
    expectOutputs(run, {
      homeserverUrl: "http://matrix-synapse:8008",
      serverName: "staging.nova.internal",
      serviceUser: "@nova-service:staging.nova.internal",
      deviceName: "nova-realtime-chat-service",
      matrixEnabled: false,
      namespace: "nova-staging",
    });
    expect(run.outputs).not.toHaveProperty("publicBaseUrl");
  });

  it("runs Synapse as one hardened, probed, non-root pod", () => {
    expectHardenedSynapse(run);
    expectRestrictedPods(run);
  });

  it("keeps the seed deployment's names", () => {
    const service = findObject<{ spec: { ports: { port: number }[] } }>(run, "Service", "matrix-synapse");
    expect(service.spec.ports[0]?.port).toBe(8008);
    const pvc = findObject<{
      spec: { resources: { requests: { storage: string } } };
    }>(run, "PersistentVolumeClaim", "matrix-synapse-data");
    expect(pvc.spec.resources.requests.storage).toBe("10Gi");
    expect(findObject(run, "ConfigMap", "realtime-chat-service-config").data).toEqual({
      MATRIX_ENABLED: "false",
      MATRIX_HOMESERVER_URL: "http://matrix-synapse:8008",
      MATRIX_SERVICE_USER: "@nova-service:staging.nova.internal",
      MATRIX_DEVICE_NAME: "nova-realtime-chat-service",
      MATRIX_SERVER_NAME: "staging.nova.internal",
    });
    const database = parse(
      objectData(run.resources, "Secret", "matrix-synapse-secrets")["database.yaml"] ?? "",
    ) as {
      database: { name: string; args: Record<string, unknown> };
    };
    expect(database.database.name).toBe("psycopg2");
    expect(database.database.args).toMatchObject({
      host: "postgres",
      port: 5432,
      dbname: "synapse",
      user: "synapse",
    });
    expect(database.database.args).not.toHaveProperty("sslmode");
  });

  it("ships with backups on: dumps of Synapse's and the bridge's databases and the media archive, to GCS", () => {
    expectBackupsOn(run, { namespace: "nova-staging", databases: ["synapse", "nova_bridge"] });
  });

  it("is cluster-internal: no Ingress, no cloud resources but the backups', the existing namespace", () => {
    const kinds = new Set(kubernetesObjects(run).map((o) => o.kind));
    expect(kinds.has("Ingress")).toBe(false);
    expect(kinds.has("Namespace")).toBe(false);
    expect(
      run.resources
        .filter((r) => r.type.startsWith("gcp:"))
        .map((r) => r.name)
        .sort(),
    ).toEqual(["backup-bucket", "backup-gsa", "backup-object-creator", "backup-workload-identity"]);
    const homeserver = parse(
      objectData(run.resources, "ConfigMap", "matrix-synapse-config")["homeserver.yaml"] ?? "",
    );
    expect(homeserver).not.toHaveProperty("public_baseurl");
  });

  it("keeps media where the official image keeps it, on the PVC, so the hand-made volume's media stays visible", () => {
    const homeserver = parse(
      objectData(run.resources, "ConfigMap", "matrix-synapse-config")["homeserver.yaml"] ?? "",
    );
    expect(homeserver).toMatchObject({ media_store_path: "/data/media_store", max_upload_size: "50M" });
  });

  it("sets up the database with the namespace Postgres's admin Secret", () => {
    expectDatabaseJob(run, { takeover: true });
    const job = kubernetesObjects(run).find((o) => o.kind === "Job") as unknown as {
      spec: {
        template: {
          spec: { containers: { env: { name: string; value?: string; valueFrom?: unknown }[] }[] };
        };
      };
    };
    const env = Object.fromEntries(
      (job.spec.template.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]),
    );
    expect(env).toMatchObject({
      PGHOST: "postgres",
      PGPORT: "5432",
      PGUSER: { secretKeyRef: { name: "postgres-credentials", key: "POSTGRES_USER" } },
      PGPASSWORD: { secretKeyRef: { name: "postgres-credentials", key: "POSTGRES_PASSWORD" } },
    });
  });

  it("writes a signing key Synapse accepts: ed25519, a non-numeric id, unpadded base64 of 32 bytes", () => {
    const key = objectData(run.resources, "Secret", "matrix-synapse-secrets")["signing.key"];
    expect(key).toMatch(/^ed25519 a_[a-z0-9]{6} [A-Za-z0-9+/]{43}\n$/);
  });

  it("isolates only this stack's pods in the shared namespace (infra/network/stacks.test.ts: who reaches whom)", () => {
    const selectors = kubernetesObjects(run)
      .filter((o) => o.kind === "NetworkPolicy")
      .map((o) => (o as unknown as { spec: { podSelector: unknown } }).spec.podSelector);
    expect(selectors.length).toBeGreaterThanOrEqual(3);
    // Never the whole namespace, never the namespace's Postgres or realtime-chat-service.
    for (const selector of selectors)
      expect(JSON.stringify(selector)).not.toMatch(/^\{\}$|postgres"|realtime-chat/);
  });
});

describeWithHarness("staging's rendered config on the real Synapse", () => {
  let postgres: PostgresServer;
  let rendered: RenderedSynapse;

  beforeAll(async () => {
    postgres = await startPostgres();
    rendered = await startRenderedSynapse(harnessChroot(), postgres, run.resources);
  });
  afterAll(async () => {
    await rendered?.synapse.dispose();
    await postgres?.stop();
  });

  it("runs a Synapse within the pinned image's window (the pinned minor version or the next)", () => {
    const verdict = judgeHarnessVersion(harnessChroot().version);
    if (verdict.kind === "within-window") console.warn(verdict.message);
    expect(verdict.kind, verdict.message).not.toBe("outside-window");
  });

  it("passes Synapse's config check and answers /health", async () => {
    expect(rendered.configCheck.output).toContain("Config parses OK");
    expect(await (await fetch(`${rendered.synapse.baseUrl}/health`)).text()).toBe("OK");
  });

  it("logs JSON lines with a severity Cloud Logging reads", async () => {
    // Synapse's own output on the rendered log config (stdout, as GKE collects it).
    const lines = (await rendered.synapse.log())
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(3);
    const started = lines.find((line) => String(line.message).includes("Synapse now listening"));
    expect(started).toMatchObject({ severity: "INFO", logger: expect.stringMatching(/^synapse\./) });
    expect(String(started?.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    for (const line of lines)
      expect(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]).toContain(line.severity);
  });

  it("answers whoami for the service user with the stack's access token", async () => {
    const token = String(run.outputs.accessToken);
    const serviceUser = String(run.outputs.serviceUser);
    const result = await whoamiAsServiceUser(rendered.synapse.baseUrl, token, serviceUser, SERVICE_LOCALPART);
    expect(result).toEqual({ status: 200, body: expect.objectContaining({ user_id: serviceUser }) });
  });
});
