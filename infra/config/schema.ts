// The stack's configuration model: one zod schema, parsed in one place. Pure (no Pulumi), so every rule is tested
// directly and `loadConfig` only gathers raw values. Error messages name the stack key and what it expects.
import { CronExpressionParser } from "cron-parser";
import { z } from "zod";
import { isIpv4Cidr, isPrivateRange } from "../network/cidr.ts";
import { bridgeDeployConfigSchema } from "./bridge.ts";

/** The Pulumi project name: stack config keys are `nova-matrix:<key>`. */
export const PROJECT = "nova-matrix";

// A DNS-1123 subdomain, lower case: Matrix server names and Kubernetes object names both need it.
const dnsName = z
  .string()
  .regex(
    /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    "expected a lower-case DNS name such as chat.nova.com (letters a-z, digits, '-' and '.')",
  );
const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "expected a lower-case DNS label such as nova-staging");
const quantity = z
  .string()
  .regex(
    /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/,
    "expected a Kubernetes quantity such as 10Gi, 512Mi or 250m",
  );
const storageQuantity = z
  .string()
  .regex(/^[0-9]+(Mi|Gi|Ti)$/, "expected a storage size in Mi, Gi or Ti, such as 10Gi");
const port = z.number().int().min(1).max(65535);
const gcpProjectId = z
  .string()
  .regex(/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/, "expected a GCP project ID such as nova-staging-123");
const sqlIdentifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, "expected a lower-case SQL identifier such as synapse");

const resources = z.strictObject({
  requests: z.strictObject({ cpu: quantity, memory: quantity }),
  limits: z.strictObject({ cpu: quantity.optional(), memory: quantity }),
});
/** A container's requests and limits as a stack sets them (Synapse's, its workers', the proxy's, Redis's, the bridge's). */
export type ResourceSettings = z.infer<typeof resources>;

/** A container's `resources` block: the requests as set, the memory limit, and a CPU limit only where one is set. */
export function containerResources(settings: ResourceSettings) {
  const { cpu, memory } = settings.limits;
  return { requests: settings.requests, limits: { memory, ...(cpu === undefined ? {} : { cpu }) } };
}

const sized = (requests: { cpu: string; memory: string }, memoryLimit: string) => ({
  requests,
  limits: { memory: memoryLimit },
});
const gcpRegion = z.string().regex(/^[a-z]+-[a-z]+[0-9]$/, "expected a GCP region such as europe-west1");
const vpcNetwork = z.string().regex(/^(https:\/\/.*\/)?projects\/[^/]+\/global\/networks\/[^/]+$/, {
  message: "expected a VPC network such as projects/<project>/global/networks/<network>",
});

/** Redis between Synapse's processes: in the cluster (staging), or Memorystore (prod). */
const redis = z.discriminatedUnion(
  "kind",
  [
    z.strictObject({
      kind: z.literal("in-cluster"),
      resources: resources.default(sized({ cpu: "50m", memory: "64Mi" }, "256Mi")),
    }),
    z.strictObject({
      kind: z.literal("memorystore"),
      region: gcpRegion,
      /** The VPC with private services access (the one Cloud SQL uses). */
      network: vpcNetwork,
      tier: z.enum(["BASIC", "STANDARD_HA"]).default("STANDARD_HA"),
      memorySizeGb: z.number().int().min(1).default(1),
    }),
  ],
  { error: 'expected kind "in-cluster" or "memorystore"' },
);

/** Synapse in worker mode (infra/synapse/workers.ts): absent or `enabled: false` = one process. */
const workers = z
  .strictObject({
    enabled: z.boolean(),
    sync: z
      .strictObject({
        replicas: z.number().int().min(1).default(2),
        /** The HorizontalPodAutoscaler's ceiling (a worker config file is rendered for each). */
        maxReplicas: z.number().int().min(1).max(20).default(6),
        targetCpuUtilization: z.number().int().min(10).max(100).default(70),
        resources: resources.default(sized({ cpu: "250m", memory: "512Mi" }, "1Gi")),
      })
      .refine((sync) => sync.replicas <= sync.maxReplicas, "expected replicas <= maxReplicas")
      .default({
        replicas: 2,
        maxReplicas: 6,
        targetCpuUtilization: 70,
        resources: sized({ cpu: "250m", memory: "512Mi" }, "1Gi"),
      }),
    client: z
      .strictObject({
        replicas: z.number().int().min(1).max(20).default(2),
        resources: resources.default(sized({ cpu: "250m", memory: "512Mi" }, "1Gi")),
      })
      .default({ replicas: 2, resources: sized({ cpu: "250m", memory: "512Mi" }, "1Gi") }),
    /** Event persisters: rooms are sharded over them; changing the count restarts every process. */
    eventPersisters: z
      .strictObject({
        count: z.number().int().min(1).max(8).default(2),
        resources: resources.default(sized({ cpu: "250m", memory: "512Mi" }, "1Gi")),
      })
      .default({ count: 2, resources: sized({ cpu: "250m", memory: "512Mi" }, "1Gi") }),
    media: z
      .strictObject({ resources: resources.default(sized({ cpu: "100m", memory: "256Mi" }, "1Gi")) })
      .default({ resources: sized({ cpu: "100m", memory: "256Mi" }, "1Gi") }),
    background: z
      .strictObject({ resources: resources.default(sized({ cpu: "100m", memory: "256Mi" }, "768Mi")) })
      .default({ resources: sized({ cpu: "100m", memory: "256Mi" }, "768Mi") }),
    proxy: z
      .strictObject({
        replicas: z.number().int().min(1).max(10).default(2),
        resources: resources.default(sized({ cpu: "100m", memory: "64Mi" }, "256Mi")),
      })
      .default({ replicas: 2, resources: sized({ cpu: "100m", memory: "64Mi" }, "256Mi") }),
    redis: redis.default({ kind: "in-cluster", resources: sized({ cpu: "50m", memory: "64Mi" }, "256Mi") }),
  })
  .optional();

const synapse = z.strictObject({
  resources,
  workers,
  storage: z.strictObject({
    size: storageQuantity,
    /** Absent: the cluster's default StorageClass. */
    storageClass: dnsName.optional(),
  }),
  /** The media volume is always kept (protect + retainOnDelete); the key stays accepted for older stack files. */
  retainVolumeOnDelete: z
    .literal(true, {
      error:
        "the media volume is always kept (protect and retainOnDelete, both stacks); remove retainVolumeOnDelete from the stack file",
    })
    .optional(),
  maxUploadSize: z
    .string()
    .regex(/^[0-9]+[KMG]$/, "expected a Synapse size such as 50M")
    .default("50M"),
  presence: z.boolean().default(false),
  logLevel: z.enum(["DEBUG", "INFO", "WARNING", "ERROR"]).default("INFO"),
  databasePool: z
    .strictObject({ min: z.number().int().min(1), max: z.number().int().min(1) })
    .refine((pool) => pool.min <= pool.max, "expected min <= max")
    .default({ min: 5, max: 10 }),
});

const secretKeyRef = z.strictObject({
  /** An existing Secret in the namespace. */
  name: dnsName,
  usernameKey: z.string().min(1),
  passwordKey: z.string().min(1),
});

const inClusterDatabase = z.strictObject({
  kind: z.literal("in-cluster"),
  host: dnsName,
  port: port.default(5432),
  name: sqlIdentifier.default("synapse"),
  user: sqlIdentifier.default("synapse"),
  /** The existing Secret holding the server's admin credentials (the setup Job reads them). */
  adminSecret: secretKeyRef,
});

const cloudSqlDatabase = z.strictObject({
  kind: z.literal("cloudsql"),
  instanceName: dnsLabel,
  region: gcpRegion,
  tier: z.string().regex(/^db-[a-z0-9-]+$/, "expected a Cloud SQL tier such as db-custom-2-7680"),
  diskSizeGb: z.number().int().min(10),
  availabilityType: z.enum(["ZONAL", "REGIONAL"]).default("REGIONAL"),
  /** The VPC (self link or `projects/<p>/global/networks/<n>`) with private services access set up. */
  network: vpcNetwork,
  backupStartTime: z
    .string()
    .regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, "expected HH:MM (UTC)")
    .default("03:00"),
  retainedBackups: z.number().int().min(1).default(14),
  name: sqlIdentifier.default("synapse"),
  user: sqlIdentifier.default("synapse"),
});

const ingress = z.strictObject({
  host: dnsName,
  /** A Cloud DNS managed zone to publish `host` in; absent: DNS is managed elsewhere. */
  dnsManagedZone: dnsLabel.optional(),
});

/** The GKE cluster the stack deploys to (infra/cluster): the program refuses a kube context that points elsewhere. */
const cluster = z.strictObject({
  project: gcpProjectId,
  location: z
    .string()
    .regex(
      /^[a-z]+-[a-z]+[0-9]+(-[a-z])?$/,
      "expected a GCP region or zone such as europe-west1 or europe-west1-b",
    ),
  name: z
    .string()
    .regex(
      /^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$/,
      "expected a GKE cluster name such as nova-prod (a-z, 0-9, '-')",
    ),
});

/** Which scraper(s) the stack runs (infra/observability/scrape.ts builds the objects of each style). */
export const SCRAPE_STYLES = ["none", "prometheus-operator", "gmp", "both"] as const;
export type ScrapeStyle = (typeof SCRAPE_STYLES)[number];

/** Monitoring (infra/observability): absent = none. */
const observability = z.strictObject({
  /** Which scraper the cluster runs: GKE's managed Prometheus (`gmp`), the Prometheus Operator, both or none. */
  scrapeStyle: z.enum(SCRAPE_STYLES),
  scrapeInterval: z
    .string()
    .regex(/^[0-9]+(s|m)$/, "expected a scrape interval such as 30s or 1m")
    .default("30s"),
  /** A ConfigMap with the bridge's Grafana dashboard, for Grafana's sidecar. */
  grafanaDashboard: z.boolean().default(false),
  /** Absolute URL of docs/runbooks.md in the repository (every alert links to its section). */
  runbookBaseUrl: z.url({ message: "expected the absolute URL of docs/runbooks.md" }),
  /** The bridge's workload as the scrapers see it. */
  bridge: z
    .strictObject({
      name: dnsLabel,
      selector: z.record(z.string(), z.string()),
      metricsPortName: z.string().min(1),
      metricsPath: z.string().startsWith("/", "expected a path such as /metrics"),
    })
    .default({
      name: "nova-bridge",
      selector: { app: "nova-bridge" },
      metricsPortName: "metrics",
      metricsPath: "/metrics",
    }),
});

/** A five-field cron expression (the backup alerts compute the longest gap between its runs). */
const cronSchedule = z.string().refine(
  (value) => {
    try {
      CronExpressionParser.parse(value, { tz: "Etc/UTC" });
      return value.trim().split(/\s+/).length === 5;
    } catch {
      return false;
    }
  },
  { error: 'expected a five-field cron expression such as "0 3 * * *" (minute hour day month weekday, UTC)' },
);

/**
 * Backups to a GCS bucket the stack declares (infra/backup): absent = none. In-cluster database: dumps of Synapse's
 * and the bridge's databases and the media archive. Cloud SQL: the media archive only (the instance's automated
 * backups and point-in-time recovery hold both databases).
 */
const backup = z.strictObject({
  /** The GCP project of the cluster and the bucket (Workload Identity pool `<project>.svc.id.goog`). */
  project: gcpProjectId,
  bucket: z.strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][-a-z0-9_.]{1,61}[a-z0-9]$/, "expected a GCS bucket name (lower case, digits, - _ .)"),
    location: z.string().min(2),
    retentionDays: z.number().int().min(1).default(30),
    noncurrentRetentionDays: z.number().int().min(1).default(7),
  }),
  /** Cron schedules (UTC) of the dump and the media archive jobs; defaults 03:00 and 03:30. */
  databaseSchedule: cronSchedule.optional(),
  mediaSchedule: cronSchedule.optional(),
});

const podLabels = z.record(z.string().min(1), z.string(), {
  error: "expected pod labels such as { app: realtime-chat-service }",
});

const ipv4Cidr = z.string().refine(isIpv4Cidr, { error: "expected an IPv4 CIDR such as 10.4.0.0/14" });

/**
 * Isolation (infra/network): a NetworkPolicy per workload of this stack (Synapse, the bridge, the database and backup
 * jobs) that selects only its pods, with the connections it accepts and the only ones it may open; Synapse's PDB and
 * PriorityClass; the addresses the appservice token is accepted from.
 */
const network = z.strictObject({
  /** Pod labels of realtime-chat-service in this namespace: it calls Synapse (and the bridge). */
  chatServiceSelector: podLabels,
  /**
   * The cluster's pod IPv4 ranges (GKE: the cluster's Pod address range, and any additional pod ranges): the
   * appservice registration's `ip_range_whitelist`, so the appservice token works only from inside the cluster.
   */
  podRanges: z
    .array(
      ipv4Cidr.refine((cidr) => !isIpv4Cidr(cidr) || isPrivateRange(cidr), {
        error: "expected private address space (10/8, 172.16/12, 192.168/16, 100.64/10), as pod ranges are",
      }),
    )
    .min(1, { error: "list the cluster's pod IPv4 ranges, such as [10.4.0.0/14]" }),
  /** Namespaces (and optionally pods) of the Prometheus scrapers, for example gmp-system for GKE's managed Prometheus. */
  scrapers: z.array(z.strictObject({ namespace: dnsLabel, podSelector: podLabels.optional() })).default([]),
  /** In-cluster database only: the labels of the namespace's Postgres pods (the only database peer allowed). */
  postgresSelector: podLabels.optional(),
});

/** `keepers` per generated secret: change a value to rotate that secret (see docs/secrets.md). */
const rotation = z
  .strictObject({
    databasePassword: z.string().optional(),
    registrationSharedSecret: z.string().optional(),
    macaroonSecretKey: z.string().optional(),
    formSecret: z.string().optional(),
    asToken: z.string().optional(),
    hsToken: z.string().optional(),
    signingKey: z.string().optional(),
    /** Worker mode: the replication secret and the in-cluster Redis's password (Memorystore makes its own). */
    replicationSecret: z.string().optional(),
    redisPassword: z.string().optional(),
  })
  .default({});

export const stackConfigSchema = z
  .strictObject({
    serverName: dnsName,
    cluster,
    namespace: dnsLabel,
    /** false: the namespace exists already (staging's holds Postgres and the backend). */
    createNamespace: z.boolean().default(false),
    /**
     * true: objects of this stack that already exist in the cluster (staging's hand-made Synapse) are adopted on the
     * first `up` (the provider's upsert, forcing server-side apply over the fields `kubectl` owned) instead of
     * failing with AlreadyExists. README, "Taking over the hand-made staging".
     */
    adoptExisting: z.boolean().default(false),
    matrixEnabled: z.boolean().default(false),
    /**
     * Take over a hand-made Synapse (staging's): the database setup Job revokes, once, every credential the hand-made
     * deployment created in the adopted database (infra/synapse/takeover.ts). Idempotent, safe to leave on.
     */
    takeover: z.boolean().default(false),
    synapse,
    database: z.discriminatedUnion("kind", [inClusterDatabase, cloudSqlDatabase], {
      error: 'expected kind "in-cluster" or "cloudsql"',
    }),
    ingress: ingress.optional(),
    observability: observability.optional(),
    backup: backup.optional(),
    /** The bridge service (infra/bridge-deploy); absent: not deployed. */
    bridge: bridgeDeployConfigSchema.optional(),
    network,
    rotation,
  })
  .superRefine((config, ctx) => {
    if (config.network.postgresSelector && config.database.kind !== "in-cluster")
      ctx.addIssue({
        code: "custom",
        path: ["network", "postgresSelector"],
        message:
          "only for an in-cluster database (Cloud SQL is reached over its private IP, outside the cluster)",
      });
    if (!config.network.postgresSelector && config.database.kind === "in-cluster")
      ctx.addIssue({
        code: "custom",
        path: ["network", "postgresSelector"],
        message:
          "is required with an in-cluster database: the labels of its Postgres pods (Synapse's and the bridge's only database peer)",
      });
    if (config.takeover && config.synapse.workers?.enabled)
      ctx.addIssue({
        code: "custom",
        path: ["takeover"],
        message:
          "only with Synapse as one process: each worker caches access tokens, and only the main process restarts after the revocation; take over first, then turn workers on",
      });
    if (config.database.kind === "cloudsql" && config.ingress === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["ingress"],
        message: "a cloudsql (prod) stack needs an ingress",
      });
    // On Cloud SQL the instance's automated backups and PITR hold Synapse's and the bridge's databases: no dump job.
    if (config.database.kind === "cloudsql" && config.backup?.databaseSchedule !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["backup", "databaseSchedule"],
        message:
          "not with a cloudsql database: Cloud SQL's automated backups and point-in-time recovery hold Synapse's and " +
          "the bridge's databases (set database.backupStartTime and database.retainedBackups instead); remove it",
      });
    // The Workload Identity binding names the cluster's pool: another project's bucket identity never gets a token.
    if (config.backup && config.backup.project !== config.cluster.project)
      ctx.addIssue({
        code: "custom",
        path: ["backup", "project"],
        message: `expected the cluster's project (cluster.project: ${config.cluster.project}): the backup jobs get Google credentials through that project's Workload Identity pool`,
      });
  });

export type StackConfig = z.infer<typeof stackConfigSchema>;
export type InClusterDatabaseConfig = z.infer<typeof inClusterDatabase>;
export type CloudSqlDatabaseConfig = z.infer<typeof cloudSqlDatabase>;
export type SynapseSettings = z.infer<typeof synapse>;
export type WorkerSettings = NonNullable<SynapseSettings["workers"]>;
export type RedisSettings = WorkerSettings["redis"];
export type IngressConfig = z.infer<typeof ingress>;
export type RotationConfig = z.infer<typeof rotation>;
export type ObservabilityConfig = z.infer<typeof observability>;
export type BackupConfig = z.infer<typeof backup>;
export type NetworkConfig = z.infer<typeof network>;
export type ClusterConfig = z.infer<typeof cluster>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Validates raw stack values (keys without the project prefix); throws one error naming every bad key. */
export function parseStackConfig(raw: Record<string, unknown>): StackConfig {
  const result = stackConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const keyName = (path: readonly PropertyKey[]) => {
    const [top, ...rest] = path.map(String);
    return top === undefined ? PROJECT : `${PROJECT}:${top}${rest.map((part) => `.${part}`).join("")}`;
  };
  const lines = result.error.issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys")
      return issue.keys.map((key) => `${keyName([...issue.path, key])}: unknown key`);
    const missing = issue.code === "invalid_type" && issue.input === undefined;
    return [`${keyName(issue.path)}: ${missing ? "is required" : issue.message}`];
  });
  throw new ConfigError(`invalid stack configuration:\n  ${lines.join("\n  ")}`);
}
