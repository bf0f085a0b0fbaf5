// Worker mode's alert rules and dashboard panels against the REAL processes: Synapse in worker mode on loopback (main,
// sync, client, event persister, media and background workers, Redis, HAProxy from Debian's packages), each process's
// /_synapse/metrics and HAProxy's own exporter scraped. Every metric the prod stack's rules and dashboard read must be
// in those scrapes with the labels the rules match on; the premises of the Redis and proxy alerts are measured
// (Redis stopped: every process's connection gauge drops to 0 and comes back; a worker killed: the proxy's backend
// has no active server), and the rules fire on those real series under promtool.
import { randomBytes } from "node:crypto";
import { type RunningSynapseCluster, waitFor } from "@nova-matrix/dev/harness";
import { startTestStack, type TestStack } from "@nova-matrix/dev/harness/test-stack";
import { describeWithHarness } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { groupName, instanceName, WORKER_GROUPS } from "../synapse/workers.ts";
import { type RenderedMonitoring, renderedMonitoring } from "../testing/rendered-monitoring.ts";
import { asSeries, parseExposition, type Sample } from "./exposition.ts";
import {
  BRIDGE_METRICS,
  HAPROXY_METRICS,
  KUBERNETES_METRICS,
  metricNamesIn,
  SCRAPER_METRICS,
  SYNAPSE_METRICS,
  SYNAPSE_WORKER_METRICS,
} from "./metrics.ts";
import { expectations, promtoolCheckAndTest } from "./promtool.ts";

/** The scrape job of a harness instance, as the cluster names it (`main` is the Synapse job). */
function jobOf(instance: string, synapseJob: string): string {
  if (instance === "main") return synapseJob;
  const group = WORKER_GROUPS.find((g) => instance.startsWith(`${groupName(g)}-`));
  if (!group) throw new Error(`instance ${instance} is in no worker group`);
  return groupName(group);
}

describeWithHarness("worker mode's alert rules and dashboard against the real processes' metrics", () => {
  let stack: TestStack;
  let cluster: RunningSynapseCluster;
  // What the prod stack renders (worker mode is on there).
  let rendered: RenderedMonitoring;
  /** Every Synapse process's scrape, by instance. */
  let healthy: Map<string, Sample[]>;
  let proxyHealthy: Sample[];
  let redisDown: Map<string, Sample[]>;
  let redisBack: Map<string, Sample[]>;
  /** The proxy's exporter with the media worker killed. */
  let mediaDown: Sample[];

  const scrapeUrl = async (url: string) =>
    parseExposition(await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text());
  const scrapeSynapse = async () =>
    new Map(
      await Promise.all(
        [...cluster.processes.keys()].map(
          async (instance) =>
            [
              instance,
              await scrapeUrl(`http://127.0.0.1:${cluster.layout.ports(instance).metrics}/_synapse/metrics`),
            ] as const,
        ),
      ),
    );
  const scrapeProxy = () => scrapeUrl(`http://127.0.0.1:${cluster.layout.proxyPorts.stats}/metrics`);
  const connections = (scrapes: Map<string, Sample[]>) =>
    new Map(
      [...scrapes].map(([instance, samples]) => [
        instance,
        samples.find((s) => s.name === "synapse_replication_tcp_resource_total_connections")?.value,
      ]),
    );
  const everyProcess = (scrapes: Map<string, Sample[]>, value: number) =>
    [...connections(scrapes).values()].every((v) => v === value);

  beforeAll(async () => {
    rendered = await renderedMonitoring("prod");
    stack = await startTestStack({ serverName: "worker-metrics.test", workers: true });
    cluster = stack.cluster as RunningSynapseCluster;
    // Traffic through the proxy (a room and a few messages: the client worker, the persister and the events
    // stream to every process), as the appservice's own user.
    const headers = { authorization: `Bearer ${stack.secrets.asToken}`, "content-type": "application/json" };
    const created = await fetch(`${cluster.baseUrl}/_matrix/client/v3/createRoom`, {
      method: "POST",
      headers,
      body: "{}",
      signal: AbortSignal.timeout(60_000),
    });
    expect(created.status).toBe(200);
    const { room_id: roomId } = (await created.json()) as { room_id: string };
    for (let i = 0; i < 3; i++) {
      const sent = await fetch(
        `${cluster.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${randomBytes(6).toString("hex")}`,
        {
          method: "PUT",
          headers,
          body: JSON.stringify({ msgtype: "m.text", body: `metrics ${i}` }),
          signal: AbortSignal.timeout(60_000),
        },
      );
      expect(sent.status).toBe(200);
    }
    // The events stream reaches the other processes asynchronously: wait until main counts the rows.
    await waitFor(
      async () =>
        (await scrapeSynapse())
          .get("main")
          ?.some(
            (s) =>
              s.name === "synapse_replication_tcp_protocol_inbound_rdata_count_total" &&
              s.labels.includes('stream_name="events"') &&
              s.value > 0,
          ) ?? false,
      { timeoutMs: 60_000, describe: () => "main never received the events stream" },
    );
    healthy = await scrapeSynapse();
    proxyHealthy = await scrapeProxy();

    await cluster.redis.process.stop();
    try {
      await waitFor(
        async () => {
          redisDown = await scrapeSynapse();
          return everyProcess(redisDown, 0);
        },
        {
          timeoutMs: 120_000,
          intervalMs: 500,
          describe: () =>
            `with Redis stopped, connections per process: ${JSON.stringify([...connections(redisDown)])}`,
        },
      );
    } finally {
      await cluster.redis.process.start();
    }
    await waitFor(
      async () => {
        redisBack = await scrapeSynapse();
        return everyProcess(redisBack, 1);
      },
      {
        timeoutMs: 120_000,
        intervalMs: 500,
        describe: () => `after Redis's restart: ${JSON.stringify([...connections(redisBack)])}`,
      },
    );

    const media = cluster.processes.get(instanceName("media", 0));
    if (!media) throw new Error("no media worker");
    await media.kill("SIGKILL");
    try {
      await waitFor(
        async () => {
          mediaDown = await scrapeProxy();
          return mediaDown.some(
            (s) =>
              s.name === "haproxy_backend_active_servers" &&
              s.labels.includes('proxy="media"') &&
              s.value === 0,
          );
        },
        { timeoutMs: 60_000, intervalMs: 500, describe: () => "the proxy never saw the media worker down" },
      );
    } finally {
      await cluster.waitUntilServing();
    }
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it("every Synapse process and the proxy expose each metric the prod stack's rules and dashboard read", () => {
    expect(rendered.workers).toBeDefined();
    const used = new Set([
      ...rendered.groups.flatMap((group) => group.rules.flatMap((rule) => metricNamesIn(rule.expr))),
      ...rendered.dashboardQueries.flatMap(metricNamesIn),
    ]);
    const exposedBy = (samples: Sample[]) => new Set(samples.map((s) => s.name));
    const proxy = exposedBy(proxyHealthy);
    // Every process has its replication gauge (the Redis rules read it per process); the rest must be exposed by
    // the processes together (a counter appears on first use: the background worker serves no request).
    for (const [instance, samples] of healthy)
      expect(exposedBy(samples).has("synapse_replication_tcp_resource_total_connections"), instance).toBe(
        true,
      );
    const synapseExposed = new Set([...healthy.values()].flatMap((samples) => [...exposedBy(samples)]));
    expect(
      [...SYNAPSE_METRICS, ...SYNAPSE_WORKER_METRICS].filter((name) => !synapseExposed.has(name)),
    ).toEqual([]);
    expect(HAPROXY_METRICS.filter((name) => !proxy.has(name))).toEqual([]);
    const external = new Set<string>([...SCRAPER_METRICS, ...KUBERNETES_METRICS, ...BRIDGE_METRICS]);
    expect(
      [...used].filter((name) => !external.has(name) && !synapseExposed.has(name) && !proxy.has(name)),
    ).toEqual([]);
    const worker = [...SYNAPSE_WORKER_METRICS, ...HAPROXY_METRICS] as readonly string[];
    expect([...used].filter((name) => worker.includes(name)).sort()).toEqual([...worker].sort());
  });

  it("have the label values the worker rules match on", () => {
    const has = (samples: Sample[] | undefined, name: string, label: string) =>
      (samples ?? []).some((s) => s.name === name && s.labels.includes(label));
    for (const backend of ["main", "sync", "client", "media"])
      expect(has(proxyHealthy, "haproxy_backend_active_servers", `proxy="${backend}"`), backend).toBe(true);
    expect(
      has(
        healthy.get("main"),
        "synapse_replication_tcp_protocol_inbound_rdata_count_total",
        'stream_name="events"',
      ),
    ).toBe(true);
    const persister = healthy.get(instanceName("event-persister", 0));
    expect(
      persister?.find((s) => s.name === "synapse_storage_events_persisted_events_total")?.value,
    ).toBeGreaterThan(0);
  });

  it("measure the premises: one Redis connection per process, 0 on every process while Redis is down, back after", () => {
    expect(everyProcess(healthy, 1)).toBe(true);
    expect(everyProcess(redisDown, 0)).toBe(true);
    expect(everyProcess(redisBack, 1)).toBe(true);
    expect(connections(healthy).size).toBe(cluster.processes.size);
  });

  it("fire SynapseRedisDown and SynapseProxyNoServer on the real series, not on the healthy ones", async () => {
    const { fires, silent, group } = expectations(rendered.groups, "real worker mode");
    // The scraped label sets plus what the scraper adds (job, instance).
    const synapseSeries = (scrapes: Map<string, Sample[]>, name: string, values: string) =>
      [...scrapes].flatMap(([instance, samples]) =>
        samples
          .filter((s) => s.name === name)
          .map((s) => asSeries(s, { job: jobOf(instance, rendered.synapseJob), instance }, values)),
      );
    const proxyJob = rendered.workers?.proxyJob;
    if (!proxyJob) throw new Error("the prod stack renders no proxy scrape job");
    const proxyInstance = { job: proxyJob, instance: `${proxyJob}-0` };
    const proxySeries = (samples: Sample[]) =>
      samples
        .filter((s) => s.name === "haproxy_backend_active_servers")
        .map((s) => asSeries(s, proxyInstance, `${s.value}x15`));
    const gauge = "synapse_replication_tcp_resource_total_connections";
    const down = synapseSeries(redisDown, gauge, "0x15");
    expect(down.length).toBe(cluster.processes.size);
    const { test } = await promtoolCheckAndTest(rendered.groups, [
      group("every process's real gauge while Redis is stopped", down, [fires("SynapseRedisDown", "5m", {})]),
      group("the real gauges, Redis running", synapseSeries(healthy, gauge, "1x15"), [
        silent("SynapseRedisDown", "10m"),
        silent("SynapseReplicationBroken", "10m"),
      ]),
      group("the proxy's real exporter, the media worker killed", proxySeries(mediaDown), [
        fires("SynapseProxyNoServer", "5m", { ...proxyInstance, proxy: "media" }),
      ]),
      group("the proxy's real exporter, every worker up", proxySeries(proxyHealthy), [
        silent("SynapseProxyNoServer", "10m"),
      ]),
    ]);
    expect(test.ok, test.output).toBe(true);
  });
});
