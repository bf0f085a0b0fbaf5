// The proxy's config on the real HAProxy (Debian's 2.6, the cluster image's branch) in front of recording HTTP
// servers standing where Synapse's processes would: who gets which request, and which X-Forwarded-For Synapse
// would trust. The real Synapse behind the same config is tested in worker-mode.test.ts.

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkHaproxyConfig, freePort, type RunningHaproxy, startHaproxy } from "@nova-matrix/dev/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HAPROXY_CONFIG_DIR, HAPROXY_CONFIG_FILE, ROUTES_MAP_FILE } from "./haproxy.ts";
import type { HomeserverInput } from "./homeserver.ts";
import { synapseListeners } from "./listeners.ts";
import { synapseWorkerPlan, type WorkerCounts } from "./workers.ts";

const homeserver = {
  serverName: "proxy.test",
  bindAddresses: ["127.0.0.1"],
  listeners: synapseListeners({ publicIngress: true, workers: true }),
  mediaStorePath: "/m",
  maxUploadSize: "50M",
  presence: false,
  files: {
    signingKey: "/s",
    registrationSharedSecret: "/r",
    macaroonSecretKey: "/m",
    formSecret: "/f",
    appserviceRegistration: "/a",
    logConfig: "/l",
  },
} satisfies HomeserverInput;
const counts: WorkerCounts = {
  sync: { replicas: 3, maxReplicas: 3 },
  client: { replicas: 3 },
  eventPersisters: 1,
};

interface Seen {
  instance: string;
  xForwardedFor: string | undefined;
  xForwardedProto: string | undefined;
}

describe("the proxy config on HAProxy 2.6", () => {
  let dir: string;
  let proxy: RunningHaproxy;
  const servers: Server[] = [];
  const ports = new Map<string, { client: number; replication: number; metrics: number }>();
  let internal = "";
  let publicUrl = "";
  let plan: ReturnType<typeof synapseWorkerPlan>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nova-proxy-"));
    const instances = [
      "main",
      ...["sync", "client"].flatMap((g) => [0, 1, 2].map((i) => `matrix-synapse-${g}-${i}`)),
    ];
    for (const instance of [...instances, "matrix-synapse-media-0"]) {
      const port = await freePort();
      ports.set(instance, { client: port, replication: await freePort(), metrics: await freePort() });
      const server = createServer((request, response) => {
        if (request.url === "/health") return void response.end("OK");
        const seen: Seen = {
          instance,
          xForwardedFor: request.headers["x-forwarded-for"] as string | undefined,
          xForwardedProto: request.headers["x-forwarded-proto"] as string | undefined,
        };
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify(seen));
      });
      await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
      servers.push(server);
    }
    const proxyPorts = { internal: await freePort(), public: await freePort(), stats: await freePort() };
    plan = synapseWorkerPlan({
      homeserver,
      counts,
      placement: {
        kind: "loopback",
        ports: (instance) => ports.get(instance) ?? { client: 1, replication: 1, metrics: 1 },
        proxyPorts,
        proxyConfigDir: dir,
      },
      replicationSecretPath: "/secret",
      workerConfigDir: "/workers",
    });
    for (const [name, content] of Object.entries(plan.proxy)) await writeFile(join(dir, name), content);
    proxy = await startHaproxy({
      configPath: join(dir, HAPROXY_CONFIG_FILE),
      logPath: join(dir, "haproxy.log"),
      statsPort: proxyPorts.stats,
    });
    await proxy.waitForServersUp();
    internal = `http://127.0.0.1:${proxyPorts.internal}`;
    publicUrl = `http://127.0.0.1:${proxyPorts.public}`;
  });

  afterAll(async () => {
    await proxy?.stop();
    for (const server of servers) server.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const get = async (url: string, headers: Record<string, string> = {}) => {
    const response = await fetch(url, { headers });
    return { status: response.status, seen: response.ok ? ((await response.json()) as Seen) : undefined };
  };

  it("passes haproxy -c, the cluster's config too (DNS-named servers, resolvers)", async () => {
    expect((await checkHaproxyConfig(join(dir, HAPROXY_CONFIG_FILE))).ok).toBe(true);
    const inCluster = synapseWorkerPlan({
      homeserver,
      counts,
      placement: { kind: "cluster", namespace: "nova-prod", clusterDomain: "cluster.local" },
      replicationSecretPath: "/secret",
      workerConfigDir: "/workers",
    }).proxy;
    const clusterDir = join(dir, "cluster");
    await rm(clusterDir, { recursive: true, force: true });
    await mkdir(clusterDir);
    // Only the map file's mount point differs from the pod.
    const config = (inCluster[HAPROXY_CONFIG_FILE] ?? "").replaceAll(
      `${HAPROXY_CONFIG_DIR}/`,
      `${clusterDir}/`,
    );
    await writeFile(join(clusterDir, HAPROXY_CONFIG_FILE), config);
    await writeFile(join(clusterDir, ROUTES_MAP_FILE), inCluster[ROUTES_MAP_FILE] ?? "");
    const check = await checkHaproxyConfig(join(clusterDir, HAPROXY_CONFIG_FILE));
    expect(check.output).toContain("Configuration file is valid");
  });

  it("internal listener: X-Forwarded-For is the caller's address, whatever the caller claims", async () => {
    const { seen } = await get(`${internal}/_matrix/client/v3/account/whoami`, {
      "x-forwarded-for": "10.0.0.1, 10.0.0.2",
      authorization: "Bearer t",
    });
    expect(seen).toMatchObject({ xForwardedFor: "127.0.0.1", xForwardedProto: "http" });
    expect(seen?.instance).toMatch(/^matrix-synapse-client-/);
  });

  it("public listener: X-Forwarded-For is the client the load balancer saw; a forged prefix never gets through", async () => {
    // Google's load balancer appends "<client>, <load balancer>" to whatever the client sent.
    const { seen } = await get(`${publicUrl}/_matrix/client/v3/account/whoami`, {
      "x-forwarded-for": "127.0.0.1, 10.1.2.3, 203.0.113.7, 35.191.0.9",
    });
    expect(seen).toMatchObject({ xForwardedFor: "203.0.113.7", xForwardedProto: "https" });
    // Not through the load balancer (fewer than its two entries): refused.
    expect((await get(`${publicUrl}/_matrix/client/v3/account/whoami`)).status).toBe(400);
    expect(
      (await get(`${publicUrl}/_matrix/client/v3/account/whoami`, { "x-forwarded-for": "127.0.0.1" })).status,
    ).toBe(400);
    // Only what the Ingress publishes: never the admin API or metrics.
    const lb = { "x-forwarded-for": "203.0.113.7, 35.191.0.9" };
    expect((await get(`${publicUrl}/_synapse/admin/v1/server_version`, lb)).status).toBe(404);
    expect((await get(`${publicUrl}/_synapse/metrics`, lb)).status).toBe(404);
    // The load balancer's health check has no X-Forwarded-For.
    expect((await fetch(`${publicUrl}/health`)).status).toBe(200);
  });

  it("keeps each user's /sync on one sync worker (access token + user_id) and spreads users over them", async () => {
    const workerOf = new Map<string, string>();
    for (let user = 0; user < 30; user++) {
      for (let repeat = 0; repeat < 3; repeat++) {
        const { seen } = await get(
          `${internal}/_matrix/client/v3/sync?user_id=%40u${user}%3Aproxy.test&since=s${repeat}`,
          {
            authorization: "Bearer one-appservice-token",
          },
        );
        expect(seen?.instance).toMatch(/^matrix-synapse-sync-/);
        const first = workerOf.get(`u${user}`) ?? (seen?.instance as string);
        workerOf.set(`u${user}`, first);
        expect(seen?.instance, `user ${user} moved between sync workers`).toBe(first);
      }
    }
    expect(new Set(workerOf.values()).size).toBe(3);
  });

  it("keeps each room's requests on one client worker (pagination must), whoever asks", async () => {
    const room = encodeURIComponent("!room:proxy.test");
    const instances = new Set<string>();
    for (let caller = 0; caller < 10; caller++) {
      for (const path of [`/rooms/${room}/messages`, `/rooms/${room}/send/m.room.message/t${caller}`]) {
        const { seen } = await get(`${internal}/_matrix/client/v3${path}`, {
          authorization: `Bearer token-${caller}`,
        });
        instances.add(seen?.instance as string);
      }
    }
    expect(instances.size).toBe(1);
  });

  it("sends media to the media worker and everything unrouted to the main process", async () => {
    expect((await get(`${internal}/_matrix/media/v3/upload`)).seen?.instance).toBe("matrix-synapse-media-0");
    expect((await get(`${internal}/_matrix/client/v1/media/download/proxy.test/x`)).seen?.instance).toBe(
      "matrix-synapse-media-0",
    );
    expect((await get(`${internal}/_synapse/admin/v1/server_version`)).seen?.instance).toBe("main");
    expect((await get(`${internal}/_matrix/client/v3/pushrules/`)).seen?.instance).toBe("main");
  });
});
