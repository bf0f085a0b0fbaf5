// The appservice token is useless outside the cluster: the layout rules (pure), then a one-process stack with an Ingress
// on the real Synapse, where the token is refused on the public listener whatever X-Forwarded-For claims and accepted on
// the in-cluster one (worker mode's public path, through the real proxy: infra/stack-prod.test.ts). On loopback, 127.0.0.1 stands for the cluster's pod ranges and 127.0.0.2 for Google's load
// balancer (startRenderedSynapse runs the registration's whitelist as 127.0.0.1/32).

import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SERVICE_LOCALPART, serviceUserId } from "@nova-matrix/contracts";
import { type PostgresServer, registerWithSharedSecret, startPostgres } from "@nova-matrix/dev/harness";
import { describeWithHarness, harnessChroot } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { cidrsOverlap, isPrivateRange } from "../network/cidr.ts";
import { GCLB_RANGES } from "../network/policies.ts";
import { PROJECT_DIR } from "../render/run.ts";
import { objectData, type RenderedSynapse, startRenderedSynapse } from "../testing/rendered-synapse.ts";
import { runStackInChild } from "../testing/stack-process.ts";
import { CLIENT_PORT, SECRET_NAME } from "./deployment-spec.ts";
import { PROXY_POD_PORTS } from "./haproxy.ts";
import { FILE_NAMES } from "./homeserver.ts";
import {
  checkAppserviceIsolation,
  PUBLIC_PORT,
  type SynapseListener,
  synapseListeners,
} from "./listeners.ts";

describe("synapseListeners and checkAppserviceIsolation", () => {
  const ranges = { appserviceIpRanges: ["10.8.0.0/14"], loadBalancerRanges: [...GCLB_RANGES] };
  const summary = (listeners: SynapseListener[]) =>
    listeners.map((l) => [l.process, l.name, l.port, l.reachedFrom, l.forwardedFor]);

  it("one process: the Ingress gets a listener of its own, and no listener trusts X-Forwarded-For", () => {
    expect(summary(synapseListeners({ publicIngress: false }))).toEqual([
      ["synapse", "http", 8008, "cluster", "peer"],
      ["synapse", "metrics", 9000, "scrapers", "peer"],
    ]);
    const withIngress = synapseListeners({ publicIngress: true });
    expect(summary(withIngress)).toEqual([
      ["synapse", "http", 8008, "cluster", "peer"],
      ["synapse", "public", 8009, "load-balancer", "peer"],
      ["synapse", "metrics", 9000, "scrapers", "peer"],
    ]);
    expect(() =>
      checkAppserviceIsolation(withIngress, { ...ranges, ingressPort: PUBLIC_PORT }),
    ).not.toThrow();
  });

  it("worker mode: the proxy's frontends replace the header, and only the proxy reaches Synapse's trusting listener", () => {
    const workers = synapseListeners({ publicIngress: true, workers: true });
    expect(summary(workers)).toEqual([
      ["proxy", "http", PROXY_POD_PORTS.internal, "cluster", "replaced"],
      ["proxy", "public", PROXY_POD_PORTS.public, "load-balancer", "replaced"],
      ["synapse", "http", 8008, "proxy", "trusted"],
      ["synapse", "metrics", 9000, "scrapers", "peer"],
    ]);
    expect(() =>
      checkAppserviceIsolation(workers, { ...ranges, ingressPort: PROXY_POD_PORTS.public }),
    ).not.toThrow();
  });

  it("refuse every layout that would let a public request pass the whitelist", () => {
    const prod = synapseListeners({ publicIngress: true });
    const trusting = prod.map((l) =>
      l.reachedFrom === "load-balancer" ? { ...l, forwardedFor: "trusted" as const } : l,
    );
    expect(() => checkAppserviceIsolation(trusting, ranges)).toThrow(/trusts X-Forwarded-For/);
    const workers = synapseListeners({ publicIngress: true, workers: true });
    const passing = workers.map((l) => (l.process === "proxy" ? { ...l, forwardedFor: "peer" as const } : l));
    expect(() => checkAppserviceIsolation(passing, ranges)).toThrow(/not every proxy frontend replaces it/);
    const bypassed = workers.map((l) =>
      l.reachedFrom === "proxy" ? { ...l, reachedFrom: "cluster" as const } : l,
    );
    expect(() => checkAppserviceIsolation(bypassed, ranges)).toThrow(/only the proxy/);
    expect(() => checkAppserviceIsolation(prod, { ...ranges, appserviceIpRanges: [] })).toThrow(
      /from anywhere/,
    );
    expect(() =>
      checkAppserviceIsolation(workers, { ...ranges, appserviceIpRanges: ["35.0.0.0/8"] }),
    ).toThrow(/not private address space/);
    expect(() => checkAppserviceIsolation(prod, { ...ranges, appserviceIpRanges: ["10.8.0.0/33"] })).toThrow(
      /not an IPv4 CIDR/,
    );
    expect(() =>
      checkAppserviceIsolation(prod, {
        appserviceIpRanges: ["10.0.0.0/8"],
        loadBalancerRanges: ["10.1.0.0/16"],
      }),
    ).toThrow(/overlaps the load balancer range 10\.1\.0\.0\/16/);
    expect(() => checkAppserviceIsolation(prod, { ...ranges, ingressPort: CLIENT_PORT })).toThrow(
      /Ingress targets port 8008/,
    );
  });

  it("cidr helpers compare address ranges", () => {
    expect(cidrsOverlap("10.0.0.0/8", "10.4.0.0/14")).toBe(true);
    expect(cidrsOverlap("10.4.0.0/14", "10.8.0.0/14")).toBe(false);
    expect(cidrsOverlap("130.211.0.0/22", "130.211.3.255/32")).toBe(true);
    expect(cidrsOverlap("130.211.0.0/22", "130.211.4.0/32")).toBe(false);
    expect(isPrivateRange("10.8.0.0/14")).toBe(true);
    expect(isPrivateRange("100.64.0.0/10")).toBe(true);
    expect(isPrivateRange("100.0.0.0/8")).toBe(false);
  });
});

/** Prod's stack file with worker mode off, written to a temporary file. */
async function prodWithoutWorkers(): Promise<string> {
  const file = parse(await readFile(join(PROJECT_DIR, "Pulumi.prod.yaml"), "utf8")) as {
    config: Record<string, { workers?: { enabled: boolean } }>;
  };
  const synapse = file.config["nova-matrix:synapse"];
  if (!synapse?.workers) throw new Error("Pulumi.prod.yaml has no nova-matrix:synapse.workers");
  synapse.workers.enabled = false;
  const path = join(await mkdtemp(join(tmpdir(), "nova-prod-monolith-")), "Pulumi.prod.yaml");
  await writeFile(path, stringify(file));
  return path;
}

/** A request from a chosen local address (127.0.0.2 plays the load balancer), as Node's fetch cannot pick one. */
function call(
  port: number,
  path: string,
  options: { from: string; token: string; headers?: Record<string, string> },
): Promise<{ status: number; body: { errcode?: string; user_id?: string } }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        localAddress: options.from,
        headers: { authorization: `Bearer ${options.token}`, ...options.headers },
      },
      (response) => {
        let text = "";
        response.on("data", (chunk) => {
          text += chunk;
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describeWithHarness(
  "the one-process layout with an Ingress on the real Synapse (prod rendered without workers)",
  () => {
    let postgres: PostgresServer;
    let rendered: RenderedSynapse;
    let asToken = "";
    let userToken = "";
    let controlPort = 0;
    const serviceUser = serviceUserId("chat.nova.com");
    const whoami = `/_matrix/client/v3/account/whoami?user_id=${encodeURIComponent(serviceUser)}`;
    const CLUSTER = "127.0.0.1";
    const LOAD_BALANCER = "127.0.0.2";

    beforeAll(async () => {
      // Prod ships worker mode (its public path is tested through the real proxy in infra/stack-prod.test.ts); this is
      // the layout any one-process stack with an Ingress gets: prod's stack file with the workers turned off.
      const prod = await runStackInChild("prod", await prodWithoutWorkers());
      asToken = String(
        (objectData(prod.resources, "Secret", "nova-matrix-service-token") as Record<string, string>)
          .MATRIX_ACCESS_TOKEN,
      );
      postgres = await startPostgres();
      rendered = await startRenderedSynapse(harnessChroot(), postgres, prod.resources, {
        // The control: a listener like the public one but trusting X-Forwarded-For (the layout this replaces).
        extraListeners: async ({ free }) => {
          controlPort = await free();
          return [
            {
              port: controlPort,
              bind_addresses: ["127.0.0.1"],
              type: "http",
              tls: false,
              x_forwarded: true,
              resources: [{ names: ["client"], compress: false }],
            },
          ];
        },
      });
      const register = await fetch(`${rendered.synapse.baseUrl}/_matrix/client/v3/register`, {
        method: "POST",
        headers: { authorization: `Bearer ${asToken}`, "content-type": "application/json" },
        body: JSON.stringify({ type: "m.login.application_service", username: SERVICE_LOCALPART }),
      });
      expect(register.status).toBe(200);
      const sharedSecret = objectData(prod.resources, "Secret", SECRET_NAME)[
        FILE_NAMES.registrationSharedSecret
      ];
      const user = await registerWithSharedSecret(rendered.synapse.baseUrl, String(sharedSecret), {
        username: "someone",
        password: randomBytes(12).toString("hex"),
      });
      userToken = user.access_token;
    }, 600_000);
    afterAll(async () => {
      await rendered?.synapse.dispose();
      await postgres?.stop();
    });

    it("renders the pod ranges as the whitelist, outside the load balancer's", () => {
      expect(rendered.stackAppserviceIpRanges.length).toBeGreaterThan(0);
      for (const range of rendered.stackAppserviceIpRanges)
        for (const lb of GCLB_RANGES) expect(cidrsOverlap(range, lb)).toBe(false);
    });

    it("accepts the appservice token on the in-cluster listener, from inside the cluster", async () => {
      const internal = rendered.hostPort(CLIENT_PORT);
      expect(await call(internal, whoami, { from: CLUSTER, token: asToken })).toEqual({
        status: 200,
        body: expect.objectContaining({ user_id: serviceUser }),
      });
    });

    it("refuses it on the public listener whatever X-Forwarded-For claims", async () => {
      const publicPort = rendered.hostPort(PUBLIC_PORT);
      for (const forwardedFor of [undefined, CLUSTER, `${CLUSTER}, 198.51.100.7, 130.211.0.9`]) {
        const headers: Record<string, string> = forwardedFor
          ? { "x-forwarded-for": forwardedFor, "x-forwarded-proto": "https" }
          : {};
        const response = await call(publicPort, whoami, { from: LOAD_BALANCER, token: asToken, headers });
        expect(response, `X-Forwarded-For: ${forwardedFor}`).toEqual({
          status: 401,
          body: expect.objectContaining({ errcode: "M_UNKNOWN_TOKEN" }),
        });
      }
      // The in-cluster listener ignores the header too: from outside the whitelist, a spoof does not help there either.
      const spoofed = await call(rendered.hostPort(CLIENT_PORT), whoami, {
        from: LOAD_BALANCER,
        token: asToken,
        headers: { "x-forwarded-for": CLUSTER },
      });
      expect(spoofed.status).toBe(401);
    });

    it("serves ordinary users on the public listener", async () => {
      const response = await call(rendered.hostPort(PUBLIC_PORT), "/_matrix/client/v3/account/whoami", {
        from: LOAD_BALANCER,
        token: userToken,
        headers: { "x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "https" },
      });
      expect(response).toEqual({
        status: 200,
        body: expect.objectContaining({ user_id: "@someone:chat.nova.com" }),
      });
    });

    it("control: a listener that trusts X-Forwarded-For lets the spoofed address through (what the layout prevents)", async () => {
      const response = await call(controlPort, whoami, {
        from: LOAD_BALANCER,
        token: asToken,
        headers: { "x-forwarded-for": `${CLUSTER}, 198.51.100.7, 130.211.0.9`, "x-forwarded-proto": "https" },
      });
      expect(response).toEqual({ status: 200, body: expect.objectContaining({ user_id: serviceUser }) });
    });
  },
);
