// The alert rules and the dashboard against a REAL Synapse's /_synapse/metrics: every metric name they read
// that is not from the scraper, the cluster or the bridge (bridge-metrics.test.ts) must be in the scrape, with the labels the
// rules match on. Also proves what SynapseDatabaseErrors relies on: with PostgreSQL gone, /health stays OK
// and requests fail with 500.
import { randomBytes } from "node:crypto";
import {
  type PostgresServer,
  type RunningSynapse,
  registerWithSharedSecret,
  startPostgres,
  startSynapse,
  testHomeserverFiles,
} from "@nova-matrix/dev/harness";
import { describeWithHarness, harnessChroot } from "@nova-matrix/dev/harness/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RenderedMonitoring, renderedMonitoring } from "../testing/rendered-monitoring.ts";
import {
  BRIDGE_METRICS,
  KUBERNETES_METRICS,
  metricNamesIn,
  SCRAPER_METRICS,
  SYNAPSE_METRICS,
} from "./metrics.ts";
import { promtoolCheckAndTest } from "./promtool.ts";

/** Sample lines of a Prometheus text exposition: metric name and raw label text. */
function samples(exposition: string): { name: string; labels: string }[] {
  return exposition
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s/.exec(line);
      if (!match?.[1]) throw new Error(`unparseable metrics line: ${line}`);
      return { name: match[1], labels: match[2] ?? "" };
    });
}

describeWithHarness("alert rules and dashboard against a real Synapse's metrics", () => {
  let postgres: PostgresServer;
  let synapse: RunningSynapse;
  let healthy: { name: string; labels: string }[];
  let databaseDown: { name: string; labels: string }[];
  let healthWhileDatabaseDown = "";
  // The rules and dashboard the staging stack renders (prod's differ only in the namespace; rules.test.ts checks both).
  let rendered: RenderedMonitoring;

  beforeAll(async () => {
    rendered = await renderedMonitoring("staging");
    postgres = await startPostgres();
    await postgres.createDatabase("synapse");
    const sharedSecret = randomBytes(16).toString("hex");
    synapse = await startSynapse({
      chroot: harnessChroot(),
      files: (paths) =>
        testHomeserverFiles(paths, {
          serverName: "metrics.test",
          postgres,
          database: "synapse",
          registrationSharedSecret: sharedSecret,
        }),
    });
    // Traffic, so that the per-servlet series the rules read exist (counters appear on first use).
    const user = await registerWithSharedSecret(synapse.baseUrl, sharedSecret, {
      username: "metrics",
      password: randomBytes(12).toString("hex"),
    });
    const headers = { authorization: `Bearer ${user.access_token}`, "content-type": "application/json" };
    const created = await fetch(`${synapse.baseUrl}/_matrix/client/v3/createRoom`, {
      method: "POST",
      headers,
      body: "{}",
    });
    const { room_id: roomId } = (await created.json()) as { room_id: string };
    const send = (txn: string) =>
      fetch(
        `${synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`,
        {
          method: "PUT",
          headers,
          body: JSON.stringify({ msgtype: "m.text", body: txn }),
          signal: AbortSignal.timeout(20_000),
        },
      );
    expect((await send("ok")).status).toBe(200);
    const scrape = async () => samples(await (await fetch(`${synapse.metricsUrl}/_synapse/metrics`)).text());
    healthy = await scrape();

    await postgres.stop();
    const statuses = [];
    for (const txn of ["down1", "down2", "down3"]) statuses.push((await send(txn)).status);
    expect(statuses).toEqual([500, 500, 500]);
    healthWhileDatabaseDown = await (await fetch(`${synapse.baseUrl}/health`)).text();
    databaseDown = await scrape();
  });

  afterAll(async () => {
    await synapse?.dispose();
    await postgres?.stop();
  });

  it("exposes every Synapse metric a rule or the dashboard reads", () => {
    const external = new Set<string>([...SCRAPER_METRICS, ...KUBERNETES_METRICS, ...BRIDGE_METRICS]);
    const used = new Set([
      ...rendered.groups.flatMap((group) => group.rules.flatMap((rule) => metricNamesIn(rule.expr))),
      ...rendered.dashboardQueries.flatMap(metricNamesIn),
    ]);
    const exposed = new Set(healthy.map((sample) => sample.name));
    const missing = [...used].filter((name) => !external.has(name) && !exposed.has(name));
    expect(missing).toEqual([]);
    expect(SYNAPSE_METRICS.filter((name) => !exposed.has(name))).toEqual([]);
    // The test reads something: the rules do use Synapse metrics.
    expect([...used].filter((name) => exposed.has(name)).length).toBeGreaterThanOrEqual(4);
  });

  it("has the label values the rules match on", () => {
    const has = (list: typeof healthy, name: string, label: string) =>
      list.some((sample) => sample.name === name && sample.labels.includes(label));
    expect(has(healthy, "synapse_threadpool_working_threads", 'name="database-master"')).toBe(true);
    expect(has(healthy, "synapse_threadpool_max_threads", 'name="database-master"')).toBe(true);
    expect(
      has(healthy, "synapse_http_server_response_time_seconds_bucket", 'servlet="RoomSendEventRestServlet"'),
    ).toBe(true);
    expect(has(healthy, "synapse_storage_schedule_time_bucket", 'le="0.5"')).toBe(true);
  });

  it("answers /health OK but counts 500s once PostgreSQL is gone (what SynapseDatabaseErrors watches)", () => {
    expect(healthWhileDatabaseDown).toBe("OK");
    const errors = (list: typeof healthy) =>
      list.filter((s) => s.name === "synapse_http_server_responses_total" && s.labels.includes('code="500"'));
    expect(errors(healthy)).toEqual([]);
    expect(errors(databaseDown).length).toBeGreaterThan(0);
  });

  it("fire SynapseDatabaseErrors and SynapseHigh5xxRate on the real 500 series, not on the real healthy ones", async () => {
    const { groups } = rendered;
    const rule = (name: string) => {
      const found = groups.flatMap((g) => g.rules).find((r) => r.alert === name);
      if (!found) throw new Error(name);
      return found;
    };
    // The scraped label sets, plus the job label the scraper adds; each series then counts 1 request/s.
    const asSeries = (list: typeof healthy, code: RegExp) =>
      list
        .filter((s) => s.name === "synapse_http_server_responses_total" && code.test(s.labels))
        .map((s) => ({
          series: `${s.name}{${s.labels.slice(1, -1)},job="${rendered.synapseJob}"}`,
          values: "0+60x20",
        }));
    const failing = asSeries(databaseDown, /code="500"/);
    const ok = asSeries(healthy, /code="2\d\d"/);
    expect(failing.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThan(0);
    const fires = (alertname: string) => ({
      eval_time: "12m",
      alertname,
      exp_alerts: [
        {
          exp_labels: { ...rule(alertname).labels, job: rendered.synapseJob },
          exp_annotations: { ...rule(alertname).annotations },
        },
      ],
    });
    const silent = (alertname: string) => ({ eval_time: "12m", alertname, exp_alerts: [] });
    const { test } = await promtoolCheckAndTest(groups, [
      {
        name: "real series while PostgreSQL is down",
        interval: "1m",
        input_series: failing,
        alert_rule_test: [fires("SynapseDatabaseErrors"), fires("SynapseHigh5xxRate")],
      },
      {
        name: "real series while healthy",
        interval: "1m",
        input_series: ok,
        alert_rule_test: [silent("SynapseDatabaseErrors"), silent("SynapseHigh5xxRate")],
      },
    ]);
    expect(test.ok, test.output).toBe(true);
  });
});
