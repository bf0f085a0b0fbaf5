// Liveness, readiness and metrics: no token (probes and scrapers), nothing under /v1.
import type { FastifyPluginAsync } from "fastify";
import type { Bridge } from "../../bridge.ts";
import type { ServiceContext } from "../context.ts";
import { type ServiceMetrics, syncLagSeconds } from "../metrics.ts";

export const healthRoutes: FastifyPluginAsync<ServiceContext> = async (app, context) => {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    const bridge = context.bridge();
    if (!bridge && context.idle === "disabled") return { status: "ready", matrix: "disabled" };
    if (!bridge) {
      reply.code(503).header("retry-after", "5");
      return { status: "standby" };
    }
    const checks = await readiness(bridge, context.homeserverUrl(), context.limits.readyMaxLagSeconds);
    const ready = Object.values(checks).every((check) => check === "ok");
    if (!ready) reply.code(503).header("retry-after", "5");
    const lag = syncLagSeconds(bridge.syncStatus());
    // Seconds the sync loop trails the homeserver (null before its first round, or when it does not run here).
    const sync_lag_seconds = Number.isFinite(lag) ? Math.round(lag * 10) / 10 : null;
    return { status: ready ? "ready" : "not_ready", checks, sync_lag_seconds };
  });
};

/** GET /metrics: on the metrics port when one is configured (what scrapers and NetworkPolicies target), else here. */
export const metricsRoutes: FastifyPluginAsync<{ metrics: ServiceMetrics }> = async (app, { metrics }) => {
  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};

type Check = "ok" | string;

async function readiness(
  bridge: Bridge,
  homeserverUrl: string | undefined,
  maxLagSeconds: number,
): Promise<Record<"synapse" | "postgres" | "sync", Check>> {
  const synapse = homeserverUrl
    ? fetch(`${homeserverUrl}/_matrix/client/versions`, { signal: AbortSignal.timeout(2000) }).then(
        (response) => (response.ok ? "ok" : `HTTP ${response.status}`),
        () => "unreachable",
      )
    : Promise.resolve("ok");
  const postgres = withTimeout(bridge.store.syncToken(), 2000).then(
    () => "ok",
    () => "unreachable",
  );
  const status = bridge.syncStatus();
  const lag = syncLagSeconds(status);
  const sync = !status.running
    ? "not running"
    : !status.caughtUp
      ? "catching up"
      : lag > maxLagSeconds
        ? `lagging ${Math.round(lag)}s`
        : "ok";
  return { synapse: await synapse, postgres: await postgres, sync };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error("timeout")), ms).unref()),
  ]);
}
