// Checks every stack must pass, shared by the staging and prod test files (one process per stack).

import { SECRET_OUTPUTS, stackOutputsSchema } from "@nova-matrix/contracts";
import { expect } from "vitest";
import { CHAT_SERVICE_CONFIG_MAP, CHAT_SERVICE_TOKEN_SECRET, PATCH_FORCE } from "../chat-service/index.ts";
import { DATABASE_SETUP_SQL, PASSWORD_ENV, VERIFIER_ENV } from "../database/sql.ts";
import type { RecordedResource } from "../render/mocks.ts";
import type { StackRun } from "../render/run.ts";
import {
  CLIENT_PORT,
  CLIENT_PORT_NAME,
  DATA_PVC_NAME,
  SYNAPSE_LABELS,
  SYNAPSE_NAME,
  SYNAPSE_PROCESS_LABEL,
  SYNAPSE_UID,
} from "../synapse/deployment-spec.ts";
import { synapseListeners } from "../synapse/listeners.ts";
import { TAKEOVER_FILE, TAKEOVER_SQL } from "../synapse/takeover.ts";
import { WORKER_GROUPS } from "../synapse/workers.ts";
import { PROXY_LABELS } from "../synapse/workers-component.ts";
import { kubernetesProblems } from "./kubernetes-schema.ts";

export type KubeObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
};

export function kubernetesObjects(run: StackRun): KubeObject[] {
  return run.resources.filter((r) => r.type.startsWith("kubernetes:")).map((r) => r.inputs as KubeObject);
}

/** The one object of `kind` called `name`; `T` describes the parts a test reads. */
export function findObject<T extends object = KubeObject>(run: StackRun, kind: string, name: string): T {
  const found = kubernetesObjects(run).filter((o) => o.kind === kind && o.metadata.name === name);
  expect(found, `${kind} ${name}`).toHaveLength(1);
  return found[0] as unknown as T;
}

export function resourcesOfType(run: StackRun, type: string): RecordedResource[] {
  return run.resources.filter((r) => r.type === type);
}

/** Schema-valid, strict, explicitly named and namespaced. */
const CLUSTER_SCOPED_KINDS = new Set(["Namespace", "PriorityClass", "ClusterRules"]);

export function expectValidKubernetesObjects(run: StackRun, namespace: string): void {
  const objects = kubernetesObjects(run);
  expect(objects.length).toBeGreaterThan(5);
  for (const object of objects) {
    const label = `${object.kind} ${object.metadata.name}`;
    expect(kubernetesProblems(object), label).toEqual([]);
    expect(object.metadata.name, label).toMatch(/^[a-z0-9][-a-z0-9.]*$/);
    if (!CLUSTER_SCOPED_KINDS.has(object.kind)) expect(object.metadata.namespace, label).toBe(namespace);
  }
}

/**
/**
 * Operations ship on: the stack scrapes Synapse and the bridge (in worker mode also each worker group and the proxy)
 * and evaluates its alert rules (GMP), and isolates its workloads with NetworkPolicies that select only its own pods
 * (infra/network/stacks.test.ts states who reaches whom).
 */
export function expectOperationsOn(run: StackRun, options: { workers: boolean }): void {
  const objects = kubernetesObjects(run);
  const kinds = objects.map((o) => o.kind);
  expect(kinds.filter((kind) => kind === "PodMonitoring")).toHaveLength(
    2 + (options.workers ? WORKER_GROUPS.length + 1 : 0),
  );
  expect(kinds).toContain("Rules");
  expect(kinds).toContain("ClusterRules");
  const policies = objects.filter((o) => o.kind === "NetworkPolicy") as unknown as {
    metadata: { name: string };
    spec: { podSelector: Record<string, unknown>; policyTypes: string[] };
  }[];
  const names = policies.map((p) => p.metadata.name);
  expect(names).toEqual(expect.arrayContaining(["nova-bridge", "nova-matrix-db-setup"]));
  // Synapse's own policy on one process; the proxy's and one per process group in worker mode.
  expect(names.includes("matrix-synapse") !== names.includes("matrix-synapse-proxy")).toBe(true);
  for (const policy of policies) {
    expect(policy.spec.podSelector, policy.metadata.name).not.toEqual({});
    expect(policy.spec.policyTypes).toEqual(["Ingress", "Egress"]);
  }
}

/**
 * What existed before the program survives it: the media volume is protected and kept on delete, and
 * realtime-chat-service's ConfigMap and Secret are patched (its MATRIX_* keys only, forced over kubectl's field
 * manager once), never owned, and kept on delete.
 */
export function expectAdoptionSafe(run: StackRun): void {
  const registered = (type: string, name: string) => {
    const found = run.registrations.filter((r) => r.type === type && r.urn.endsWith(`::${name}`));
    expect(found, `${type} ${name}`).toHaveLength(1);
    return found[0] as StackRun["registrations"][number];
  };
  const pvc = run.resources.find(
    (r) => r.type === "kubernetes:core/v1:PersistentVolumeClaim" && objectName(r) === DATA_PVC_NAME,
  );
  expect(pvc, "the media PVC").toBeDefined();
  expect(registered("kubernetes:core/v1:PersistentVolumeClaim", pvc?.name ?? "")).toMatchObject({
    protect: true,
    retainOnDelete: true,
  });
  for (const [type, name] of [
    ["kubernetes:core/v1:ConfigMapPatch", CHAT_SERVICE_CONFIG_MAP],
    ["kubernetes:core/v1:SecretPatch", CHAT_SERVICE_TOKEN_SECRET],
  ] as const) {
    const patch = run.resources.filter((r) => r.type === type && objectName(r) === name);
    expect(patch, `${type} ${name}`).toHaveLength(1);
    const { inputs, name: resourceName } = patch[0] as RecordedResource;
    expect((inputs.metadata as { annotations?: object }).annotations).toMatchObject(PATCH_FORCE);
    const keys = Object.keys((inputs.data ?? inputs.stringData) as object);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key).toMatch(/^MATRIX_/);
    expect(registered(type, resourceName).retainOnDelete).toBe(true);
  }
  // Nothing owns them whole.
  for (const [kind, name] of [
    ["ConfigMap", CHAT_SERVICE_CONFIG_MAP],
    ["Secret", CHAT_SERVICE_TOKEN_SECRET],
  ] as const) {
    expect(
      run.resources.filter((r) => r.type === `kubernetes:core/v1:${kind}` && objectName(r) === name),
    ).toEqual([]);
  }
}

const objectName = (resource: RecordedResource) =>
  (resource.inputs.metadata as { name?: string } | undefined)?.name;

/** No generated secret in a ConfigMap, in a non-secret output, or anywhere outside a Secret's data. */
export function expectNoSecretLeaks(run: StackRun): void {
  expect(run.secretValues.size).toBeGreaterThan(5);
  const contains = (value: unknown) => {
    const text = JSON.stringify(value);
    return [...run.secretValues].filter((secret) => text.includes(secret));
  };
  for (const object of kubernetesObjects(run)) {
    if (object.kind === "Secret") {
      const { stringData: _data, ...rest } = object;
      expect(contains(rest), `Secret ${object.metadata.name} outside its data`).toEqual([]);
    } else {
      expect(contains(object), `${object.kind} ${object.metadata.name}`).toEqual([]);
    }
  }
  for (const [key, value] of Object.entries(run.outputs)) {
    if (run.secretOutputs.has(key)) continue;
    expect(contains(value), `output ${key}`).toEqual([]);
  }
  // Exactly the documented secret outputs that this stack has (bridgeApiToken only where the bridge is deployed).
  expect([...run.secretOutputs].sort()).toEqual(SECRET_OUTPUTS.filter((name) => name in run.outputs).sort());
}

/** The outputs have the documented shape, and the token is the one the backend's Secret carries. */
export function expectOutputs(run: StackRun, expected: Record<string, unknown>): void {
  const outputs = stackOutputsSchema.parse(run.outputs);
  expect(outputs).toMatchObject(expected);
  const token = findObject(run, "Secret", "nova-matrix-service-token").stringData as Record<string, string>;
  expect(token).toEqual({ MATRIX_ACCESS_TOKEN: outputs.accessToken });
}

/** Single writer, probes, hardening, config checksum, init check, Service ports. */
export function expectHardenedSynapse(run: StackRun, mode: { workers: boolean } = { workers: false }): void {
  const deployment = findObject<
    KubeObject & {
      spec: {
        replicas: number;
        strategy: { type: string };
        template: {
          metadata: { labels: Record<string, string>; annotations: Record<string, string> };
          spec: Record<string, unknown> & {
            securityContext: Record<string, unknown>;
            initContainers: Record<string, unknown>[];
            containers: (Record<string, unknown> & { securityContext: Record<string, unknown> })[];
            volumes: Record<string, unknown>[];
          };
        };
      };
    }
  >(run, "Deployment", SYNAPSE_NAME);
  const { spec } = deployment;
  expect(spec.replicas).toBe(1);
  expect(spec.strategy).toEqual({ type: "Recreate" });
  expect(spec.template.metadata.labels).toEqual(
    mode.workers ? { ...SYNAPSE_LABELS, [SYNAPSE_PROCESS_LABEL]: "main" } : SYNAPSE_LABELS,
  );
  expect(spec.template.metadata.annotations["nova.chat/config-checksum"]).toMatch(/^[0-9a-f]{64}$/);
  const pod = spec.template.spec;
  expect(pod.securityContext).toMatchObject({
    runAsNonRoot: true,
    runAsUser: SYNAPSE_UID,
    runAsGroup: SYNAPSE_UID,
    fsGroup: SYNAPSE_UID,
    seccompProfile: { type: "RuntimeDefault" },
  });
  expect(pod.initContainers.map((c) => (c.command as string[]).slice(0, 3))).toEqual([
    ["python", "-m", "synapse.config"],
  ]);
  const synapse = pod.containers.find((c) => c.name === "synapse");
  expect(synapse).toBeDefined();
  for (const container of [...pod.containers, ...pod.initContainers] as { securityContext: unknown }[]) {
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
  }
  const ports = synapse?.ports as { name: string; containerPort: number }[];
  expect(ports.find((p) => p.name === CLIENT_PORT_NAME)?.containerPort).toBe(CLIENT_PORT);
  for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    expect(synapse?.[probe], probe).toMatchObject({ httpGet: { path: "/health", port: CLIENT_PORT_NAME } });
  }
  const resources = synapse?.resources as {
    requests: Record<string, string>;
    limits: Record<string, string>;
  };
  expect(resources.requests.cpu).toBeTruthy();
  expect(resources.limits.memory).toBeTruthy();
  expect(pod.volumes).toContainEqual({ name: "tmp", emptyDir: { sizeLimit: "256Mi" } });
  const dataVolume = { name: "data", persistentVolumeClaim: { claimName: DATA_PVC_NAME } };
  const service = findObject<
    KubeObject & {
      spec: { selector: Record<string, string>; ports: { name: string; port: number }[] };
    }
  >(run, "Service", SYNAPSE_NAME);
  if (mode.workers) {
    // The media worker holds the (ReadWriteOnce) media volume, not the main process; the in-cluster URL
    // (matrix-synapse:8008) is the proxy's internal listener.
    expect(pod.volumes).not.toContainEqual(dataVolume);
    const media = findObject<
      KubeObject & { spec: { replicas: number; template: { spec: { volumes: unknown[] } } } }
    >(run, "StatefulSet", "matrix-synapse-media");
    expect(media.spec.replicas).toBe(1);
    expect(media.spec.template.spec.volumes).toContainEqual(dataVolume);
    expect(service.spec.selector).toEqual(PROXY_LABELS);
    expect(service.spec.ports.map((p) => [p.name, p.port])).toEqual([[CLIENT_PORT_NAME, CLIENT_PORT]]);
    return;
  }
  expect(pod.volumes).toContainEqual(dataVolume);
  expect(service.spec.selector).toEqual(SYNAPSE_LABELS);
  // One Service port per listener, the in-cluster one first (the seed's matrix-synapse:8008).
  expect(service.spec.ports.map((p) => [p.name, p.port])).toEqual(
    synapseListeners({ publicIngress: kubernetesObjects(run).some((o) => o.kind === "Ingress") }).map((l) => [
      l.name,
      l.port,
    ]),
  );
  expect(service.spec.ports[0]).toMatchObject({ name: CLIENT_PORT_NAME, port: CLIENT_PORT });
  expect(ports.map((p) => p.name)).toEqual(service.spec.ports.map((p) => p.name));
}

/** The setup Job runs the tested script, with the passwords from Secrets. */
export function expectDatabaseJob(run: StackRun, options: { takeover?: boolean } = {}): void {
  expect(findObject(run, "ConfigMap", "matrix-synapse-db-setup").data).toEqual({
    "setup.sql": DATABASE_SETUP_SQL,
    // Staging takes the hand-made Synapse over (infra/synapse/takeover.ts), after the setup.
    ...(options.takeover ? { [TAKEOVER_FILE]: TAKEOVER_SQL } : {}),
  });
  // Synapse's setup Job (the bridge's database has its own, checked in infra/bridge-deploy).
  const jobs = kubernetesObjects(run).filter(
    (o) => o.kind === "Job" && o.metadata.labels?.app === "matrix-synapse-db-setup",
  );
  expect(jobs).toHaveLength(1);
  const env = (
    jobs[0] as unknown as {
      spec: {
        template: {
          spec: { containers: { env: { name: string; value?: string; valueFrom?: unknown }[] }[] };
        };
      };
    }
  ).spec.template.spec.containers[0]?.env;
  for (const name of ["PGPASSWORD", VERIFIER_ENV]) {
    const variable = env?.find((e) => e.name === name);
    expect(variable?.value, name).toBeUndefined();
    expect(variable?.valueFrom, name).toMatchObject({ secretKeyRef: {} });
  }
  // The Job reads the SCRAM verifier of Synapse's password, never the password (kept beside it for backups).
  const setup = findObject<{ stringData: Record<string, string> }>(run, "Secret", "matrix-synapse-db-setup");
  expect(setup.stringData[VERIFIER_ENV]).toMatch(
    /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/,
  );
  const synapseSecret = findObject<{ stringData: Record<string, string> }>(
    run,
    "Secret",
    "matrix-synapse-secrets",
  );
  const password = /password: (\S+)/.exec(synapseSecret.stringData["database.yaml"] ?? "")?.[1];
  expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
  expect(setup.stringData[PASSWORD_ENV]).toBe(password);
  const job = JSON.stringify(jobs[0]);
  expect(job).not.toContain(`"${PASSWORD_ENV}"`);
  expect(job).not.toContain(password);
}

interface PodTemplateSpec {
  securityContext?: { runAsNonRoot?: boolean; fsGroup?: number; seccompProfile?: { type?: string } };
  containers: ContainerSpec[];
  initContainers?: ContainerSpec[];
  volumes?: Record<string, unknown>[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
}
interface ContainerSpec {
  name: string;
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  securityContext?: {
    runAsNonRoot?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    privileged?: boolean;
  };
}

/** Every pod template passes Pod Security Admission's `restricted` profile (the prod namespace enforces it). */
export function expectRestrictedPods(run: StackRun): void {
  const templates = [
    ...kubernetesObjects(run)
      .filter((o) => o.kind === "Deployment" || o.kind === "Job")
      .map(
        (o) =>
          [
            `${o.kind} ${o.metadata.name}`,
            (o as unknown as { spec: { template: { spec: PodTemplateSpec } } }).spec.template.spec,
          ] as const,
      ),
    ...kubernetesObjects(run)
      .filter((o) => o.kind === "CronJob")
      .map((o) => [`CronJob ${o.metadata.name}`, cronJobPod(o)] as const),
  ];
  expect(templates.length).toBeGreaterThanOrEqual(2);
  const allowedVolumes = [
    "configMap",
    "secret",
    "emptyDir",
    "persistentVolumeClaim",
    "projected",
    "downwardAPI",
    "name",
  ];
  for (const [label, pod] of templates) {
    expect(pod.securityContext?.seccompProfile?.type, label).toBe("RuntimeDefault");
    expect(pod.hostNetwork || pod.hostPID || pod.hostIPC, label).toBeFalsy();
    for (const volume of pod.volumes ?? []) {
      expect(
        Object.keys(volume).filter((key) => !allowedVolumes.includes(key)),
        `${label} volume`,
      ).toEqual([]);
      // Secret and ConfigMap files are owned by root: a non-root pod reads them through the world bits, or the
      // group bits with an fsGroup.
      const source = (volume.secret ?? volume.configMap) as { defaultMode?: number } | undefined;
      if (source) {
        const mode = source.defaultMode ?? 0o644;
        const readable =
          (mode & 0o004) !== 0 || ((mode & 0o040) !== 0 && pod.securityContext?.fsGroup !== undefined);
        expect(readable, `${label} volume ${String(volume.name)} (mode ${mode.toString(8)})`).toBe(true);
      }
    }
    for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) {
      const where = `${label} container ${container.name}`;
      const context = container.securityContext ?? {};
      expect(context.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, where).toBe(true);
      expect(context.allowPrivilegeEscalation, where).toBe(false);
      expect(context.privileged, where).toBeFalsy();
      expect(context.capabilities?.drop, where).toEqual(["ALL"]);
      expect(context.capabilities?.add ?? [], where).toEqual([]);
    }
  }
}

type CronJobPod = PodTemplateSpec & {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  affinity?: {
    podAffinity?: {
      requiredDuringSchedulingIgnoredDuringExecution?: {
        labelSelector: { matchLabels: Record<string, string> };
        topologyKey: string;
      }[];
    };
  };
};

const cronJobPod = (object: KubeObject) =>
  (object as unknown as { spec: { jobTemplate: { spec: { template: { spec: CronJobPod } } } } }).spec
    .jobTemplate.spec.template.spec;

/**
 * Backups ship on: the bucket (versioned, never force-destroyed, protected), an identity without key (a Kubernetes
 * service account bound to a Google one that may only create objects), the media archive beside the one pod that
 * mounts the ReadWriteOnce media volume, and a dump of exactly `databases`, each password read from a Secret this
 * stack renders with that key (none on Cloud SQL: no dump job at all).
 */
export function expectBackupsOn(run: StackRun, expected: { namespace: string; databases: string[] }): void {
  const bucket = resourcesOfType(run, "gcp:storage/bucket:Bucket");
  expect(bucket).toHaveLength(1);
  expect(bucket[0]?.inputs).toMatchObject({
    versioning: { enabled: true },
    forceDestroy: false,
    publicAccessPrevention: "enforced",
    uniformBucketLevelAccess: true,
  });
  expect(run.registrations.find((r) => r.urn.endsWith(`::${bucket[0]?.name}`))?.protect).toBe(true);
  expect(resourcesOfType(run, "gcp:serviceaccount/key:Key")).toEqual([]);
  const gsa = resourcesOfType(run, "gcp:serviceaccount/account:Account");
  expect(gsa).toHaveLength(1);
  const email = `${String(gsa[0]?.inputs.accountId)}@${String(gsa[0]?.inputs.project)}.iam.gserviceaccount.com`;
  expect(resourcesOfType(run, "gcp:storage/bucketIAMMember:BucketIAMMember").map((r) => r.inputs)).toEqual([
    {
      bucket: bucket[0]?.inputs.name,
      role: "roles/storage.objectCreator",
      member: `serviceAccount:${email}`,
    },
  ]);
  const ksa = findObject<KubeObject & { automountServiceAccountToken: boolean }>(
    run,
    "ServiceAccount",
    "nova-matrix-backup",
  );
  expect(ksa.metadata.annotations).toEqual({ "iam.gke.io/gcp-service-account": email });
  expect(ksa.automountServiceAccountToken).toBe(false);
  expect(resourcesOfType(run, "gcp:serviceaccount/iAMMember:IAMMember").map((r) => r.inputs.member)).toEqual([
    `serviceAccount:${String(gsa[0]?.inputs.project)}.svc.id.goog[${expected.namespace}/nova-matrix-backup]`,
  ]);

  const cronJobs = kubernetesObjects(run).filter((o) => o.kind === "CronJob");
  for (const job of cronJobs) expect(cronJobPod(job).serviceAccountName).toBe("nova-matrix-backup");
  // The media archive runs on the node of the only pod template that mounts the media volume.
  const mounting = kubernetesObjects(run).filter(
    (o) =>
      (o.kind === "Deployment" || o.kind === "StatefulSet") &&
      JSON.stringify(
        (o as { spec?: { template?: { spec?: { volumes?: unknown } } } }).spec?.template?.spec?.volumes ?? [],
      ).includes(`"claimName":"${DATA_PVC_NAME}"`),
  ) as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } }[];
  expect(mounting).toHaveLength(1);
  const media = cronJobPod(findObject(run, "CronJob", "nova-matrix-media-backup"));
  const [affinity] = media.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
  expect(affinity?.topologyKey).toBe("kubernetes.io/hostname");
  expect(mounting[0]?.spec.template.metadata.labels).toMatchObject(
    affinity?.labelSelector.matchLabels ?? { none: "" },
  );
  expect(JSON.stringify(media.volumes)).toContain(`"claimName":"${DATA_PVC_NAME}","readOnly":true`);

  const dumps = cronJobs.filter((o) => o.metadata.name === "nova-matrix-db-backup");
  if (expected.databases.length === 0) {
    expect(dumps).toEqual([]);
    return;
  }
  expect(dumps).toHaveLength(1);
  const init = cronJobPod(dumps[0] as KubeObject).initContainers ?? [];
  expect(
    init.map((c) => c.command?.find((arg) => arg.startsWith("--dbname="))?.slice("--dbname=".length)),
  ).toEqual(expected.databases);
  for (const container of init) {
    const ref = container.env?.find((e) => e.name === "PGPASSWORD")?.valueFrom?.secretKeyRef;
    expect(ref, "PGPASSWORD from a Secret").toBeDefined();
    const secret = findObject<{ stringData: Record<string, string> }>(run, "Secret", ref?.name ?? "");
    expect(Object.keys(secret.stringData)).toContain(ref?.key);
  }
}
