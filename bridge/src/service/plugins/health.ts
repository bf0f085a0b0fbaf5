// Liveness, readiness and metrics: no token (probes and scrapers), nothing under /v1.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Bridge } from "../../bridge.ts";
import type { ServiceContext } from "../context.ts";
import { type ServiceMetrics, syncLagSeconds } from "../metrics.ts";

const readiness = z.object({
  status: z.enum(["ready", "not_ready", "standby"]),
  /** Absent when the integration is disabled or the process stands by. */
  matrix: z.literal("disabled").optional(),
  /** "ok", or what is wrong. */
  checks: z.object({ synapse: z.string(), postgres: z.string(), sync: z.string() }).optional(),
  /** Seconds the sync loop trails the homeserver (null before its first round, or when it does not run here). */
  sync_lag_seconds: z.number().nullable().optional(),
});

export const healthRoutes: FastifyPluginAsyncZod<ServiceContext> = async (app, context) => {
  app.get(
    "/healthz",
    {
      schema: {
        summary: "The process is up",
        security: [],
        response: { 200: z.object({ status: z.literal("ok") }).meta({ description: "Up" }) },
      },
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/readyz",
    {
      schema: {
        summary: "Synapse and Postgres reachable and the sync loop caught up (or the integration disabled)",
        security: [],
        response: {
          200: readiness.meta({ description: "Ready" }),
          503: readiness.meta({
            description: "Not ready, or standing by for the sync lock; see Retry-After",
          }),
        },
      },
    },
    async (_request, reply) => {
      const bridge = context.bridge();
      if (!bridge && context.idle === "disabled")
        return { status: "ready" as const, matrix: "disabled" as const };
      if (!bridge) {
        reply.code(503).header("retry-after", "5");
        return { status: "standby" as const };
      }
      const checks = await readinessChecks(
        bridge,
        context.homeserverUrl(),
        context.limits.readyMaxLagSeconds,
      );
      const ready = Object.values(checks).every((check) => check === "ok");
      if (!ready) reply.code(503).header("retry-after", "5");
      const lag = syncLagSeconds(bridge.syncStatus());
      // Seconds the sync loop trails the homeserver (null before its first round, or when it does not run here).
      const sync_lag_seconds = Number.isFinite(lag) ? Math.round(lag * 10) / 10 : null;
      return { status: ready ? ("ready" as const) : ("not_ready" as const), checks, sync_lag_seconds };
    },
  );
};

/** GET /metrics: on the metrics port when one is configured (what scrapers and NetworkPolicies target), else here. */
export const metricsRoutes: FastifyPluginAsyncZod<{ metrics: ServiceMetrics }> = async (app, { metrics }) => {
  app.get(
    "/metrics",
    {
      schema: {
        summary: "Prometheus metrics (text exposition format)",
        security: [],
        produces: ["text/plain"],
        response: { 200: z.string().meta({ description: "Metrics" }) },
      },
    },
    async (_request, reply) => {
      reply.header("content-type", metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );
};

type Check = "ok" | string;

async function readinessChecks(
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
