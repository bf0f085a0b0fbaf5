// The prod stack under Pulumi's mock runtime: Cloud SQL, the public TLS Ingress and everything staging checks;
// then its rendered Synapse config (TLS to the database dropped, paths re-pointed) on the real Synapse.

import { SERVICE_LOCALPART } from "@nova-matrix/contracts";
import { type PostgresServer, startPostgres } from "@nova-matrix/dev/harness";
import { describeWithHarness, harnessChroot } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { BRIDGE_DB_SETUP_NAME, BRIDGE_SECRET } from "./bridge-deploy/spec.ts";
import { MOCK_CA_CERT, MOCK_DATABASE_IP, MOCK_REDIS_IP, MOCK_STATIC_IP } from "./render/mocks.ts";
import { runStack, type StackRun } from "./render/run.ts";
import { CLIENT_PORT, REPLICATION_PORT } from "./synapse/deployment-spec.ts";
import { instanceName } from "./synapse/workers.ts";
import {
  objectData,
  type RenderedWorkers,
  startRenderedWorkers,
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
  resourcesOfType,
} from "./testing/stack-invariants.ts";

let run: StackRun;
beforeAll(async () => {
  run = await runStack("prod");
});

const onlyInputs = (type: string) => {
  const found = resourcesOfType(run, type);
  expect(found, type).toHaveLength(1);
  return found[0]?.inputs as Record<string, unknown>;
};

describe("prod stack under mocks", () => {
  it("validates every Kubernetes object (GKE CRDs included) against the API schemas, strictly", () => {
    expectValidKubernetesObjects(run, "nova-prod");
    const namespace = findObject(run, "Namespace", "nova-prod");
    expect(namespace.metadata.labels?.["pod-security.kubernetes.io/enforce"]).toBe("restricted");
  });

  it("ships with monitoring on: scrape objects and alert rules", () => {
    expectOperationsOn(run, { workers: true });
  });

  it("keeps what existed before: the media volume protected, realtime-chat-service's objects patched, not owned", () => {
    expectAdoptionSafe(run);
  });

  it("leaks no secret into a ConfigMap, an annotation or a plain output", () => {
    expectNoSecretLeaks(run);
  });

  it("exports the documented outputs, publicBaseUrl included", () => {
    expectOutputs(run, {
      homeserverUrl: "http://matrix-synapse:8008",
      serverName: "chat.nova.com",
      serviceUser: "@nova-service:chat.nova.com",
      deviceName: "nova-realtime-chat-service",
      matrixEnabled: false,
      namespace: "nova-prod",
      publicBaseUrl: "https://chat.nova.com/",
    });
  });

  it("runs Synapse's main process as one hardened pod (worker mode) with prod's resources and a kept volume", () => {
    expectHardenedSynapse(run, { workers: true });
    expectRestrictedPods(run);
    const pvc = findObject<{
      spec: { storageClassName: string; resources: { requests: { storage: string } } };
    }>(run, "PersistentVolumeClaim", "matrix-synapse-data");
    expect(pvc.spec).toMatchObject({
      storageClassName: "premium-rwo",
      resources: { requests: { storage: "100Gi" } },
    });
  });

  it("publishes only the client API, media and the client well-known, over HTTPS with a managed certificate", () => {
    const ingress = findObject<{
      metadata: { annotations: Record<string, string> };
      spec: Record<string, unknown> & {
        rules: {
          host: string;
          http: { paths: { path: string; backend: { service: { name: string } } }[] };
        }[];
      };
    }>(run, "Ingress", "matrix-synapse");
    expect(ingress.metadata.annotations).toMatchObject({
      "kubernetes.io/ingress.class": "gce",
      "kubernetes.io/ingress.global-static-ip-name": "matrix-synapse-ip",
      "networking.gke.io/managed-certificates": "matrix-synapse",
      "networking.gke.io/v1beta1.FrontendConfig": "matrix-synapse",
    });
    expect(ingress.spec).not.toHaveProperty("ingressClassName");
    expect(ingress.spec).not.toHaveProperty("defaultBackend");
    const [rule] = ingress.spec.rules;
    expect(rule?.host).toBe("chat.nova.com");
    const paths = rule?.http.paths.map((p) => p.path) ?? [];
    expect(paths).toEqual(["/_matrix/client", "/_matrix/media", "/.well-known/matrix/client"]);
    expect(paths.some((p) => p.startsWith("/_synapse"))).toBe(false);
    // Worker mode: the proxy's public listener, which replaces X-Forwarded-For (infra/synapse/haproxy.ts).
    expect(
      rule?.http.paths.every(
        (p) =>
          JSON.stringify(p.backend.service) ===
          JSON.stringify({ name: "matrix-synapse-public", port: { name: "public" } }),
      ),
    ).toBe(true);
    expect(JSON.stringify(ingress)).not.toMatch(/metrics|9000/);

    expect(findObject(run, "ManagedCertificate", "matrix-synapse").spec).toEqual({
      domains: ["chat.nova.com"],
    });
    expect(findObject(run, "FrontendConfig", "matrix-synapse").spec).toMatchObject({
      redirectToHttps: { enabled: true },
      sslPolicy: "matrix-synapse-tls12",
    });
    // The TLS policy the FrontendConfig names: TLS 1.2 at least.
    expect(onlyInputs("gcp:compute/sSLPolicy:SSLPolicy")).toEqual({
      name: "matrix-synapse-tls12",
      profile: "MODERN",
      minTlsVersion: "TLS_1_2",
    });
    expect(findObject(run, "BackendConfig", "matrix-synapse").spec).toMatchObject({
      // Worker mode: the load balancer checks the proxy's public listener, which passes /health to Synapse.
      healthCheck: { type: "HTTP", requestPath: "/health", port: 8080 },
    });
    const service = findObject(run, "Service", "matrix-synapse");
    expect(service.metadata.annotations).toEqual({
      "cloud.google.com/neg": '{"ingress":true}',
      "cloud.google.com/backend-config": '{"default":"matrix-synapse"}',
    });
  });

  it("reserves the global static IP the Ingress names and points DNS at it", () => {
    expect(onlyInputs("gcp:compute/globalAddress:GlobalAddress")).toMatchObject({
      name: "matrix-synapse-ip",
    });
    expect(onlyInputs("gcp:dns/recordSet:RecordSet")).toMatchObject({
      managedZone: "nova-com",
      name: "chat.nova.com.",
      type: "A",
      rrdatas: [MOCK_STATIC_IP],
    });
  });

  it("runs the database on Cloud SQL for PostgreSQL 15: private IP only, TLS, backups with PITR, deletion protection", () => {
    const instance = onlyInputs("gcp:sql/databaseInstance:DatabaseInstance");
    expect(instance).toMatchObject({
      databaseVersion: "POSTGRES_15",
      deletionProtection: true,
      settings: {
        deletionProtectionEnabled: true,
        ipConfiguration: { ipv4Enabled: false, sslMode: "ENCRYPTED_ONLY" },
        backupConfiguration: { enabled: true, pointInTimeRecoveryEnabled: true },
      },
    });
    expect(onlyInputs("gcp:sql/user:User")).toMatchObject({ name: "nova_admin" });
    const database = parse(
      objectData(run.resources, "Secret", "matrix-synapse-secrets")["database.yaml"] ?? "",
    ) as {
      database: { args: Record<string, unknown> };
    };
    expect(database.database.args).toMatchObject({
      host: MOCK_DATABASE_IP,
      dbname: "synapse",
      user: "synapse",
      sslmode: "verify-ca",
      sslrootcert: "/secrets/database-ca.pem",
    });
    expect(objectData(run.resources, "Secret", "matrix-synapse-secrets")["database-ca.pem"]).toBe(
      MOCK_CA_CERT,
    );
    expectDatabaseJob(run);
  });

  it("keeps the bridge's database on the Cloud SQL instance, so the instance's backups and PITR hold it too", () => {
    const instance = onlyInputs("gcp:sql/databaseInstance:DatabaseInstance") as {
      settings: { backupConfiguration: Record<string, unknown> };
    };
    expect(instance.settings.backupConfiguration).toMatchObject({
      enabled: true,
      pointInTimeRecoveryEnabled: true,
      startTime: "03:00",
      transactionLogRetentionDays: 7,
      backupRetentionSettings: { retainedBackups: 14, retentionUnit: "COUNT" },
    });
    // The bridge's role and database are made by its setup Job on that instance's private address, and the bridge
    // connects there: no other database server exists in this stack.
    const setup = kubernetesObjects(run).find(
      (o) => o.kind === "Job" && String(o.metadata.name).startsWith(`${BRIDGE_DB_SETUP_NAME}-`),
    ) as unknown as {
      spec: {
        template: { spec: { containers: { command: string[]; env: { name: string; value?: string }[] }[] } };
      };
    };
    const psql = setup.spec.template.spec.containers[0];
    expect(psql?.env.find((e) => e.name === "PGHOST")?.value).toBe(MOCK_DATABASE_IP);
    expect(psql?.command).toContain("db=nova_bridge");
    const url = new URL(objectData(run.resources, "Secret", BRIDGE_SECRET).BRIDGE_DATABASE_URL ?? "");
    expect([url.hostname, url.pathname]).toEqual([MOCK_DATABASE_IP, "/nova_bridge"]);
    expect(run.resources.filter((r) => r.type === "gcp:sql/databaseInstance:DatabaseInstance")).toHaveLength(
      1,
    );
  });

  it("ships with the media archive to GCS, beside the media worker, and no dump job (Cloud SQL holds both databases)", () => {
    expectBackupsOn(run, { namespace: "nova-prod", databases: [] });
    const media = findObject<{
      spec: { jobTemplate: { spec: { template: { spec: { affinity: unknown } } } } };
    }>(run, "CronJob", "nova-matrix-media-backup");
    expect(JSON.stringify(media.spec.jobTemplate.spec.template.spec.affinity)).toContain(
      '"app":"matrix-synapse-media"',
    );
  });

  it("serves the public base URL; Synapse trusts X-Forwarded-For only behind the proxy, and the token only from the pod ranges", () => {
    const homeserver = parse(
      objectData(run.resources, "ConfigMap", "matrix-synapse-config")["homeserver.yaml"] ?? "",
    ) as {
      public_baseurl: string;
      listeners: { type: string; port: number; x_forwarded?: boolean; resources?: { names: string[] }[] }[];
    };
    expect(homeserver.public_baseurl).toBe("https://chat.nova.com/");
    // The main process: its client listener behind the proxy (which replaces the header), replication without.
    expect(homeserver.listeners.filter((l) => l.type === "http").map((l) => [l.port, l.x_forwarded])).toEqual(
      [
        [CLIENT_PORT, true],
        [REPLICATION_PORT, false],
      ],
    );
    // The same list the NetworkPolicies are written for (nova-matrix:network.podRanges).
    const registration = parse(
      objectData(run.resources, "Secret", "matrix-synapse-secrets")["appservice-nova-bridge.yaml"] ?? "",
    ) as { ip_range_whitelist: string[] };
    expect(registration.ip_range_whitelist).toEqual(["10.8.0.0/14"]);
  });

  it("isolates its workloads (infra/network/stacks.test.ts: who reaches whom) and schedules Synapse first", () => {
    expect(findObject(run, "PodDisruptionBudget", "matrix-synapse")).toBeDefined();
    const deployment = findObject<{ spec: { template: { spec: { priorityClassName?: string } } } }>(
      run,
      "Deployment",
      "matrix-synapse",
    );
    expect(deployment.spec.template.spec.priorityClassName).toBe(
      findObject(run, "PriorityClass", "nova-matrix-synapse").metadata.name,
    );
    // Cloud SQL and Memorystore are outside the cluster: egress to their private addresses, from the instances.
    const main = JSON.stringify(findObject(run, "NetworkPolicy", "matrix-synapse-main"));
    expect(main).toContain(`"cidr":"${MOCK_DATABASE_IP}/32"`);
    expect(main).toContain(`"cidr":"${MOCK_REDIS_IP}/32"`);
  });
});

describeWithHarness("prod's rendered worker mode on the real Synapse (re-pointed at loopback)", () => {
  let postgres: PostgresServer;
  let rendered: RenderedWorkers;
  // A scaled-down prod: one of each group, both event persisters (rooms are sharded over them).
  const run_ = [
    instanceName("sync", 0),
    instanceName("client", 0),
    instanceName("event-persister", 0),
    instanceName("event-persister", 1),
    instanceName("media", 0),
    instanceName("background", 0),
  ];

  beforeAll(async () => {
    postgres = await startPostgres();
    rendered = await startRenderedWorkers(harnessChroot(), postgres, run.resources, run_);
  }, 600_000);
  afterAll(async () => {
    await rendered?.cluster.dispose();
    await postgres?.stop();
  });

  it("passes Synapse's config check for the main process and every rendered worker, and answers /health", async () => {
    // Up to the sync workers' maxReplicas: 1 main + 6 sync + 2 client + 2 persisters + media + background.
    expect(Object.keys(rendered.configChecks)).toHaveLength(13);
    for (const [instance, check] of Object.entries(rendered.configChecks))
      expect(`${instance}: ${check.output.includes("Config parses OK")}`).toBe(`${instance}: true`);
    expect(await (await fetch(`${rendered.cluster.baseUrl}/health`)).text()).toBe("OK");
  });

  it("answers whoami for the service user with the stack's access token, through the proxy", async () => {
    const serviceUser = String(run.outputs.serviceUser);
    const result = await whoamiAsServiceUser(
      rendered.cluster.baseUrl,
      String(run.outputs.accessToken),
      serviceUser,
      SERVICE_LOCALPART,
    );
    expect(result).toEqual({ status: 200, body: expect.objectContaining({ user_id: serviceUser }) });
  });

  it("refuses the appservice token through the public listener whatever X-Forwarded-For says, and accepts it through the internal one", async () => {
    // The harness runs the registration's whitelist as 127.0.0.1/32 (rendered-synapse.ts): the test's own address
    // stands for the pod ranges. Through the load balancer, X-Forwarded-For is `<what the client wrote>, <client>,
    // <load balancer>`; the proxy passes on only <client>.
    const serviceUser = String(run.outputs.serviceUser);
    const asToken = String(run.outputs.accessToken);
    const whoami = `/_matrix/client/v3/account/whoami?user_id=${encodeURIComponent(serviceUser)}`;
    const ask = (base: string, forwardedFor?: string) =>
      fetch(`${base}${whoami}`, {
        headers: {
          authorization: `Bearer ${asToken}`,
          ...(forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor }),
        },
      });
    // Registered by the whoami test above, through the internal listener.
    expect((await ask(rendered.cluster.baseUrl)).status).toBe(200);
    expect((await ask(rendered.cluster.baseUrl, "203.0.113.7")).status).toBe(200);
    for (const forged of [
      "127.0.0.1, 203.0.113.7, 35.191.0.9",
      "10.8.0.5, 127.0.0.1, 203.0.113.7, 130.211.0.4",
    ]) {
      const response = await ask(rendered.cluster.publicUrl, forged);
      expect(`${forged}: ${response.status}`).toBe(`${forged}: 401`);
      expect(((await response.json()) as { errcode?: string }).errcode).toBe("M_UNKNOWN_TOKEN");
    }
    // A request that did not come through the load balancer is refused by the proxy itself.
    expect((await ask(rendered.cluster.publicUrl, "127.0.0.1")).status).toBe(400);
    expect((await ask(rendered.cluster.publicUrl)).status).toBe(400);
  });

  it("serves the client well-known at the public base URL, through the public listener", async () => {
    const response = await fetch(`${rendered.cluster.publicUrl}/.well-known/matrix/client`, {
      headers: { "x-forwarded-for": "203.0.113.7, 35.191.0.9" },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ "m.homeserver": { base_url: "https://chat.nova.com/" } });
  });
});
