// Synapse's workers on Kubernetes, from the worker plan: one StatefulSet per group (a pod's stable name is its
// worker name, so two pods never run as one instance), a headless Service each (instance_map and the proxy reach
// pods by name), the main process's Service, the proxy (HAProxy) that routes every request, PDBs, and the sync
// workers' HorizontalPodAutoscaler. The main process's Deployment and the config/Secret stay in component.ts.
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { containerResources, type ResourceSettings, type WorkerSettings } from "../config/schema.ts";
import { nonRootContainerSecurity } from "../network/policies.ts";
import {
  CLIENT_PORT,
  CLIENT_PORT_NAME,
  METRICS_PORT,
  METRICS_PORT_NAME,
  processSpec,
  REPLICATION_PORT,
  REPLICATION_PORT_NAME,
  SYNAPSE_LABELS,
  SYNAPSE_PROCESS_LABEL,
  synapsePodSpec,
  WORKERS_CONFIG_MAP,
} from "./deployment-spec.ts";
import { HAPROXY_CONFIG_DIR, HAPROXY_CONFIG_FILE, HAPROXY_IMAGE, HAPROXY_UID } from "./haproxy.ts";
import { toYaml } from "./homeserver.ts";
import { PUBLIC_PORT_NAME } from "./listeners.ts";
import {
  groupName,
  MAIN_SERVICE,
  PROXY_POD_PORTS,
  WORKER_GROUPS,
  type WorkerGroup,
  type WorkerPlan,
} from "./workers.ts";

export const PROXY_NAME = "matrix-synapse-proxy";
export const PROXY_LABELS = { app: PROXY_NAME } as const;
export const PROXY_CONFIG_MAP = PROXY_NAME;
/** The Service the Ingress reaches: only the proxy's public listener. */
export const PUBLIC_SERVICE = "matrix-synapse-public";

export const PROXY_STATS_PORT_NAME = "stats";

/** Pod labels of a worker group. */
export const groupLabels = (group: WorkerGroup) => ({ app: groupName(group) });
/** Every Synapse process (the main one included) in worker mode. */
export const SYNAPSE_PROCESS_SELECTOR = (group: WorkerGroup | "main") => ({ [SYNAPSE_PROCESS_LABEL]: group });

export interface SynapseWorkersArgs {
  namespace: pulumi.Input<string>;
  settings: WorkerSettings;
  plan: WorkerPlan;
  /** The shared config's digest (component.ts): a change rolls every worker too. */
  configChecksum: pulumi.Input<string>;
  priorityClassName?: string | undefined;
  /** GKE's NEG and BackendConfig annotations for the public Service (prod's Ingress). */
  publicServiceAnnotations?: Record<string, string> | undefined;
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

export class SynapseWorkers extends pulumi.ComponentResource {
  public readonly publicServiceName = PUBLIC_SERVICE;

  constructor(name: string, args: SynapseWorkersArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:synapse:SynapseWorkers", name, {}, opts);
    const { settings, plan, namespace } = args;
    const parent = { parent: this };
    const meta = (objectName: string, labels: Record<string, string>) => ({
      name: objectName,
      namespace,
      labels,
    });

    const workerFiles = Object.fromEntries(
      plan.processes.flatMap((p) => (p.workerFile ? [[p.workerFile.name, toYaml(p.workerFile.config)]] : [])),
    );
    const workersConfig = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      { metadata: meta(WORKERS_CONFIG_MAP, SYNAPSE_LABELS), data: workerFiles },
      parent,
    );
    const checksum = pulumi.output(args.configChecksum).apply((shared) => digest({ shared, ...workerFiles }));

    new k8s.core.v1.Service(
      `${name}-main-service`,
      {
        metadata: meta(MAIN_SERVICE, SYNAPSE_LABELS),
        spec: {
          type: "ClusterIP",
          selector: SYNAPSE_LABELS,
          ports: [
            { name: CLIENT_PORT_NAME, port: CLIENT_PORT, targetPort: CLIENT_PORT_NAME, protocol: "TCP" },
            {
              name: REPLICATION_PORT_NAME,
              port: REPLICATION_PORT,
              targetPort: REPLICATION_PORT_NAME,
              protocol: "TCP",
            },
            { name: METRICS_PORT_NAME, port: METRICS_PORT, targetPort: METRICS_PORT_NAME, protocol: "TCP" },
          ],
        },
      },
      parent,
    );

    const groups: Record<WorkerGroup, { replicas: number; resources: ResourceSettings }> = {
      sync: settings.sync,
      client: settings.client,
      "event-persister": {
        replicas: settings.eventPersisters.count,
        resources: settings.eventPersisters.resources,
      },
      media: { replicas: 1, resources: settings.media.resources },
      background: { replicas: 1, resources: settings.background.resources },
    };
    for (const group of WORKER_GROUPS) {
      const { replicas, resources } = groups[group];
      const objectName = groupName(group);
      const labels = { ...groupLabels(group), ...SYNAPSE_PROCESS_SELECTOR(group) };
      const process = processSpec(group);
      // Headless: each pod gets a DNS name (instance_map, the proxy's servers), nothing is load-balanced.
      const service = new k8s.core.v1.Service(
        `${name}-${group}-service`,
        {
          metadata: meta(objectName, labels),
          spec: {
            clusterIP: "None",
            selector: groupLabels(group),
            ports: process.ports.map((p) => ({
              name: p.name,
              port: p.port,
              targetPort: p.name,
              protocol: "TCP",
            })),
          },
        },
        parent,
      );
      new k8s.apps.v1.StatefulSet(
        `${name}-${group}`,
        {
          metadata: meta(objectName, labels),
          spec: {
            serviceName: objectName,
            replicas,
            // Workers need no ordered start (the main process migrates the schema; workers wait for it).
            podManagementPolicy: "Parallel",
            updateStrategy: { type: "RollingUpdate" },
            selector: { matchLabels: groupLabels(group) },
            template: {
              metadata: { labels, annotations: { "nova.chat/config-checksum": checksum } },
              spec: synapsePodSpec({ resources, priorityClassName: args.priorityClassName, process }),
            },
          },
        },
        { parent: this, dependsOn: [workersConfig, service, ...(args.dependsOn ?? [])] },
      );
      new k8s.policy.v1.PodDisruptionBudget(
        `${name}-${group}-pdb`,
        {
          metadata: meta(objectName, labels),
          spec: {
            // One pod of a group at a time (a single-instance group restarts for seconds, like a rollout).
            maxUnavailable: 1,
            unhealthyPodEvictionPolicy: "AlwaysAllow",
            selector: { matchLabels: groupLabels(group) },
          },
        },
        parent,
      );
    }

    new k8s.autoscaling.v2.HorizontalPodAutoscaler(
      `${name}-sync-hpa`,
      {
        metadata: meta(groupName("sync"), groupLabels("sync")),
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "StatefulSet", name: groupName("sync") },
          minReplicas: settings.sync.replicas,
          // The proxy and the rendered worker files cover up to maxReplicas.
          maxReplicas: settings.sync.maxReplicas,
          metrics: [
            {
              type: "Resource",
              resource: {
                name: "cpu",
                target: { type: "Utilization", averageUtilization: settings.sync.targetCpuUtilization },
              },
            },
          ],
        },
      },
      parent,
    );

    const proxyConfig = new k8s.core.v1.ConfigMap(
      `${name}-proxy-config`,
      { metadata: meta(PROXY_CONFIG_MAP, PROXY_LABELS), data: { ...plan.proxy } },
      parent,
    );
    new k8s.apps.v1.Deployment(
      `${name}-proxy`,
      {
        metadata: meta(PROXY_NAME, PROXY_LABELS),
        spec: {
          replicas: settings.proxy.replicas,
          selector: { matchLabels: PROXY_LABELS },
          template: {
            metadata: {
              labels: PROXY_LABELS,
              annotations: { "nova.chat/config-checksum": digest(plan.proxy) },
            },
            spec: proxyPodSpec(settings.proxy.resources, args.priorityClassName),
          },
        },
      },
      { parent: this, dependsOn: [proxyConfig] },
    );
    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-proxy-pdb`,
      {
        metadata: meta(PROXY_NAME, PROXY_LABELS),
        spec: { minAvailable: 1, selector: { matchLabels: PROXY_LABELS } },
      },
      parent,
    );
    // The exporter and stats page (a ServiceMonitor scrapes through a Service; `kubectl port-forward` reads /stats).
    new k8s.core.v1.Service(
      `${name}-proxy-service`,
      {
        metadata: meta(PROXY_NAME, PROXY_LABELS),
        spec: {
          type: "ClusterIP",
          selector: PROXY_LABELS,
          ports: [
            {
              name: PROXY_STATS_PORT_NAME,
              port: PROXY_POD_PORTS.stats,
              targetPort: PROXY_STATS_PORT_NAME,
              protocol: "TCP",
            },
          ],
        },
      },
      parent,
    );
    new k8s.core.v1.Service(
      `${name}-public-service`,
      {
        metadata: {
          ...meta(PUBLIC_SERVICE, PROXY_LABELS),
          ...(args.publicServiceAnnotations ? { annotations: args.publicServiceAnnotations } : {}),
        },
        spec: {
          type: "ClusterIP",
          selector: PROXY_LABELS,
          ports: [
            {
              name: PUBLIC_PORT_NAME,
              port: PROXY_POD_PORTS.public,
              targetPort: PUBLIC_PORT_NAME,
              protocol: "TCP",
            },
          ],
        },
      },
      parent,
    );
    this.registerOutputs({});
  }
}

function digest(files: Record<string, string>): string {
  const hash = createHash("sha256");
  for (const key of Object.keys(files).sort()) hash.update(`${key}\0${files[key]}\0`);
  return hash.digest("hex");
}

/** HAProxy's pod: the official image as its own non-root user, its config from the ConfigMap. */
export function proxyPodSpec(
  resources: ResourceSettings,
  priorityClassName: string | undefined,
): k8s.types.input.core.v1.PodSpec {
  const healthz = (extra: Record<string, number>) => ({
    httpGet: { path: "/healthz", port: PROXY_STATS_PORT_NAME },
    ...extra,
  });
  return {
    ...(priorityClassName === undefined ? {} : { priorityClassName }),
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: HAPROXY_UID,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [
      {
        name: "haproxy",
        image: HAPROXY_IMAGE,
        // -W master-worker, -db foreground: the image's own way; the config is the rendered one.
        command: ["haproxy", "-W", "-db", "-f", `${HAPROXY_CONFIG_DIR}/${HAPROXY_CONFIG_FILE}`],
        ports: [
          { name: CLIENT_PORT_NAME, containerPort: PROXY_POD_PORTS.internal, protocol: "TCP" },
          { name: PUBLIC_PORT_NAME, containerPort: PROXY_POD_PORTS.public, protocol: "TCP" },
          { name: PROXY_STATS_PORT_NAME, containerPort: PROXY_POD_PORTS.stats, protocol: "TCP" },
        ],
        readinessProbe: healthz({ periodSeconds: 5, failureThreshold: 3 }),
        livenessProbe: healthz({ periodSeconds: 10, failureThreshold: 6 }),
        resources: containerResources(resources),
        securityContext: nonRootContainerSecurity(HAPROXY_UID),
        volumeMounts: [{ name: "config", mountPath: HAPROXY_CONFIG_DIR, readOnly: true }],
      },
    ],
    volumes: [{ name: "config", configMap: { name: PROXY_CONFIG_MAP, defaultMode: 0o444 } }],
  };
}
