// What a backup is and how it is restored (pure): the pg_dump / pg_restore arguments, the media archive, and
// the CronJob specs that run them. The restore test runs these very arguments against a real Synapse.
import { CronExpressionParser } from "cron-parser";
import type { ICronJob } from "kubernetes-models/batch/v1/CronJob";
import type { IAffinity } from "kubernetes-models/v1/Affinity";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { ISecurityContext } from "kubernetes-models/v1/SecurityContext";
import type { IVolume } from "kubernetes-models/v1/Volume";
import { nonRootContainerSecurity } from "../network/policies.ts";

/**
 * Table data Synapse's backup guide says not to back up ("How to back up a Synapse homeserver",
 * docs/usage/administration/backups.md, "Synapse-specific details"): `e2e_one_time_keys_json`, because restoring
 * old one-time keys re-issues used ones and breaks decryption. Its schema is kept; only its rows are skipped.
 */
export const SYNAPSE_EXCLUDED_TABLE_DATA = ["e2e_one_time_keys_json"] as const;

/**
 * The media store directories to keep, from the same guide: `local_content` (possibly the only copy anywhere)
 * and `local_thumbnails` (no tooling regenerates them without `dynamic_thumbnails`). `remote_*` and
 * `url_cache*` are caches Synapse refetches.
 */
export const MEDIA_BACKUP_DIRECTORIES = ["local_content", "local_thumbnails"] as const;

export interface DumpTarget {
  /** Database name (also the dump's file name). */
  readonly database: string;
  readonly host: string;
  readonly port: number;
  /** Role that dumps (the database owner: it can read every table). */
  readonly user: string;
  /** Tables whose rows are skipped (their definitions are kept). */
  readonly excludeTableData: readonly string[];
}

/** `pg_dump` arguments: custom format (compressed, what pg_restore reads), password from PGPASSWORD. */
export function pgDumpArgs(target: DumpTarget, file: string): string[] {
  return [
    "--format=custom",
    `--host=${target.host}`,
    `--port=${target.port}`,
    `--username=${target.user}`,
    `--dbname=${target.database}`,
    "--no-password",
    ...target.excludeTableData.map((table) => `--exclude-table-data=${table}`),
    `--file=${file}`,
  ];
}

export interface RestoreTarget {
  /** A FRESH database (UTF8, C collation, template0): never restore over an existing one (Synapse's guide). */
  readonly database: string;
  readonly host: string;
  readonly port: number;
  /** The role that will own the objects (connects and restores as itself, so no superuser is needed). */
  readonly user: string;
}

/** `pg_restore` arguments: all or nothing, objects owned by the connecting role (Cloud SQL has no superuser). */
export function pgRestoreArgs(target: RestoreTarget, file: string): string[] {
  return [
    `--host=${target.host}`,
    `--port=${target.port}`,
    `--username=${target.user}`,
    `--dbname=${target.database}`,
    "--no-password",
    "--no-owner",
    "--no-privileges",
    "--exit-on-error",
    "--single-transaction",
    file,
  ];
}

/** `tar` arguments that write the media directories to stdout; run in the media store directory. */
export function mediaArchiveArgs(
  mediaStorePath: string,
  directories: readonly string[] = MEDIA_BACKUP_DIRECTORIES,
): string[] {
  return ["--create", `--directory=${mediaStorePath}`, ...directories];
}

/** `tar` arguments that unpack an archive from stdin into a (new) media store directory. */
export function mediaExtractArgs(mediaStorePath: string): string[] {
  return ["--extract", `--directory=${mediaStorePath}`];
}

/** Quotes one argument for `sh -c` (single quotes; an embedded quote is closed, escaped, reopened). */
export const shellQuote = (arg: string) =>
  /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;

/**
 * The media job's bash script: archive the directories that exist (`local_thumbnails` appears with the first
 * image) to a new object, since the GSA may only create objects, never overwrite. pipefail: a failing tar fails the job.
 */
export function mediaBackupScript(mediaStorePath: string, bucket: string): string {
  const tarPrefix = mediaArchiveArgs(mediaStorePath, []).map(shellQuote).join(" ");
  return [
    "set -euo pipefail",
    "present=()",
    `for dir in ${MEDIA_BACKUP_DIRECTORIES.join(" ")}; do`,
    `  if [ -d ${shellQuote(mediaStorePath)}/"$dir" ]; then present+=("$dir"); fi`,
    "done",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's array syntax, for bash, not a JS template.
    'if [ "${#present[@]}" -eq 0 ]; then echo "no media uploaded yet: nothing to archive"; exit 0; fi',
    'stamp="$(date -u +%Y%m%dT%H%M%SZ)"',
    `tar ${tarPrefix} "\${present[@]}" | gcloud storage cp - ${shellQuote(`gs://${bucket}/media/`)}"$stamp.tar"`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's array syntax, for bash, not a JS template.
    'echo "media archived to media/$stamp.tar: ${present[*]}"',
  ].join("\n");
}

/** The upload step of the database job: the dumps in `dir` go under a new, timestamped prefix. */
export function dumpUploadScript(dir: string, bucket: string): string {
  return [
    "set -euo pipefail",
    'stamp="$(date -u +%Y%m%dT%H%M%SZ)"',
    `gcloud storage cp ${shellQuote(dir)}/*.dump ${shellQuote(`gs://${bucket}/postgres/`)}"$stamp/"`,
    'echo "dumps uploaded to postgres/$stamp/"',
  ].join("\n");
}

export interface JobImages {
  /** Has pg_dump of the server's major version (or newer). */
  readonly postgres: string;
  /** Has gcloud (and tar, sh). */
  readonly cloudSdk: string;
}

/**
 * Pinned defaults (never `latest`): PostgreSQL 15's client for a 15 server (the same image as the database setup
 * Job, infra/database's PSQL_IMAGE; a test keeps them equal), and a fixed Cloud SDK release.
 */
export const DEFAULT_IMAGES: JobImages = {
  postgres: "postgres:15.10-alpine",
  cloudSdk: "gcr.io/google.com/cloudsdktool/google-cloud-cli:499.0.0-slim",
};

export interface DatabaseToDump extends DumpTarget {
  /** The Secret key holding the role's password (becomes PGPASSWORD). */
  readonly passwordSecret: { readonly name: string; readonly key: string };
  /**
   * Cloud SQL (prod) requires TLS: the server is verified against this CA (`PGSSLMODE=verify-ca`, as Synapse and
   * the setup Job do; Cloud SQL's certificate names the instance, not the IP, so `verify-full` does not apply).
   */
  readonly serverCa?: { readonly name: string; readonly key: string };
}

/** libpq's environment for one database: the password from its Secret, TLS settings when it has a CA. */
export function dumpEnvironment(db: DatabaseToDump, caPath: string) {
  return [
    {
      name: "PGPASSWORD",
      valueFrom: { secretKeyRef: { name: db.passwordSecret.name, key: db.passwordSecret.key } },
    },
    { name: "PGCONNECT_TIMEOUT", value: "10" },
    ...(db.serverCa
      ? [
          { name: "PGSSLMODE", value: "verify-ca" },
          { name: "PGSSLROOTCERT", value: caPath },
        ]
      : []),
  ];
}

export interface BackupJobsInput {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccountName: string;
  readonly bucket: string;
  readonly images: JobImages;
  /** Cron schedules (UTC). */
  readonly databaseSchedule: string;
  readonly mediaSchedule: string;
  readonly databases: readonly DatabaseToDump[];
  readonly media: {
    readonly claimName: string;
    /** Where the media store lives inside the claim (Synapse's `media_store_path` relative to the mount). */
    readonly subPath: string;
    /** Synapse's uid/gid, so the job can read what Synapse wrote. */
    readonly runAsUser: number;
    /** Synapse's pod labels: the RWO volume can only be mounted on Synapse's node. */
    readonly synapsePodSelector: Readonly<Record<string, string>>;
  };
}

const DUMP_DIR = "/backup";
const MEDIA_DIR = "/media";

/**
 * Restricted Pod Security, as every workload's container (no root, no escalation, no capabilities, read-only root),
 * with the RuntimeDefault seccomp profile repeated from the pod's securityContext.
 */
const containerSecurity = (runAsUser: number): ISecurityContext => ({
  ...nonRootContainerSecurity(runAsUser),
  seccompProfile: { type: "RuntimeDefault" },
});

const resources = { requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "1", memory: "1Gi" } };
/** gcloud writes its config under HOME; give it the writable scratch volume. */
const gcloudEnv = [
  { name: "HOME", value: "/tmp" },
  { name: "CLOUDSDK_CONFIG", value: "/tmp/gcloud" },
  // Parallel composite uploads (gcloud's default for large files) delete their temporary parts: the backup
  // identity may only create objects, so large dumps would fail half-way. One plain upload per object.
  { name: "CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED", value: "False" },
];

/** A run not started within an hour of its time is skipped; one running past 4 hours is stopped (and fails). */
const STARTING_DEADLINE_SECONDS = 3600;
const RUN_DEADLINE_SECONDS = 4 * 3600;

function cronJob(
  input: BackupJobsInput,
  name: string,
  schedule: string,
  pod: {
    initContainers?: IContainer[];
    containers: IContainer[];
    volumes: IVolume[];
    runAsUser: number;
    affinity?: IAffinity;
  },
): ICronJob {
  return {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: { name, namespace: input.namespace, labels: { ...input.labels } },
    spec: {
      schedule,
      timeZone: "Etc/UTC",
      // A slow run is never doubled up (two dumps would compete for the database).
      concurrencyPolicy: "Forbid",
      startingDeadlineSeconds: STARTING_DEADLINE_SECONDS,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels: { ...input.labels, "app.kubernetes.io/component": name } },
        spec: {
          backoffLimit: 2,
          activeDeadlineSeconds: RUN_DEADLINE_SECONDS,
          ttlSecondsAfterFinished: 7 * 24 * 3600,
          template: {
            metadata: { labels: { ...input.labels, "app.kubernetes.io/component": name } },
            spec: {
              serviceAccountName: input.serviceAccountName,
              // Workload Identity needs no Kubernetes token; nothing here talks to the Kubernetes API.
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              restartPolicy: "Never",
              securityContext: {
                runAsNonRoot: true,
                runAsUser: pod.runAsUser,
                runAsGroup: pod.runAsUser,
                fsGroup: pod.runAsUser,
                seccompProfile: { type: "RuntimeDefault" },
              },
              ...(pod.affinity ? { affinity: pod.affinity } : {}),
              ...(pod.initContainers ? { initContainers: pod.initContainers } : {}),
              containers: pod.containers,
              volumes: pod.volumes,
            },
          },
        },
      },
    },
  };
}

/** The database dump CronJob; its pods carry `app.kubernetes.io/component: <this>`. */
export const DATABASE_BACKUP_JOB = "nova-matrix-db-backup";
/** The media archive CronJob, labelled the same way. */
export const MEDIA_BACKUP_JOB = "nova-matrix-media-backup";
/** Each job's pods, as its NetworkPolicy selects them. */
export const BACKUP_JOB_PODS = {
  dumps: { matchLabels: { "app.kubernetes.io/component": DATABASE_BACKUP_JOB } },
  media: { matchLabels: { "app.kubernetes.io/component": MEDIA_BACKUP_JOB } },
} as const;

/** Default schedules (UTC): the dumps at 03:00, the media archive at 03:30. */
export const DEFAULT_SCHEDULES = { database: "0 3 * * *", media: "30 3 * * *" } as const;

export interface PlannedCronJob {
  readonly which: "database" | "media";
  readonly name: string;
  readonly schedule: string;
}

/**
 * The backup CronJobs a stack runs: the dumps only when there are databases to dump (none on Cloud SQL), the media
 * archive always. The Backup component creates these and the backup alerts watch these.
 */
export function plannedCronJobs(input: {
  readonly dumps: boolean;
  readonly databaseSchedule?: string | undefined;
  readonly mediaSchedule?: string | undefined;
}): PlannedCronJob[] {
  return [
    ...(input.dumps
      ? [
          {
            which: "database" as const,
            name: DATABASE_BACKUP_JOB,
            schedule: input.databaseSchedule ?? DEFAULT_SCHEDULES.database,
          },
        ]
      : []),
    { which: "media", name: MEDIA_BACKUP_JOB, schedule: input.mediaSchedule ?? DEFAULT_SCHEDULES.media },
  ];
}

/**
 * The longest time between two runs of a cron schedule (UTC), over its next 2000 runs or 400 days, whichever ends
 * first: long enough for any monthly or yearly pattern. Throws, naming the schedule, if it is not valid cron.
 */
export function longestScheduleGapSeconds(schedule: string): number {
  let runs: ReturnType<typeof CronExpressionParser.parse>;
  try {
    runs = CronExpressionParser.parse(schedule, {
      currentDate: new Date(Date.UTC(2025, 0, 1)),
      tz: "Etc/UTC",
    });
  } catch (error) {
    throw new Error(`backup schedule "${schedule}" is not a cron expression: ${(error as Error).message}`);
  }
  const first = runs.next().getTime();
  let previous = first;
  let longest = 0;
  for (let i = 0; i < 2000 && previous - first < 400 * 86_400_000; i++) {
    const next = runs.next().getTime();
    longest = Math.max(longest, next - previous);
    previous = next;
  }
  return longest / 1000;
}

/** The nightly logical dump of every database: one pg_dump init container each, then one upload. */

export function databaseBackupCronJob(input: BackupJobsInput): ICronJob {
  const uid = 70; // the alpine postgres image's `postgres` user
  const caVolume = (index: number) => `server-ca-${index}`;
  const dumps: IContainer[] = input.databases.map((db, index) => ({
    name: `dump-${db.database.replaceAll("_", "-")}`,
    image: input.images.postgres,
    command: ["pg_dump", ...pgDumpArgs(db, `${DUMP_DIR}/${db.database}.dump`)],
    env: dumpEnvironment(db, `/tls/${index}/ca.pem`),
    securityContext: containerSecurity(uid),
    resources,
    volumeMounts: [
      { name: "backup", mountPath: DUMP_DIR },
      { name: "tmp", mountPath: "/tmp" },
      ...(db.serverCa ? [{ name: caVolume(index), mountPath: `/tls/${index}`, readOnly: true }] : []),
    ],
  }));
  const caVolumes: IVolume[] = input.databases.flatMap((db, index) =>
    db.serverCa
      ? [
          {
            name: caVolume(index),
            secret: { secretName: db.serverCa.name, items: [{ key: db.serverCa.key, path: "ca.pem" }] },
          },
        ]
      : [],
  );
  return cronJob(input, DATABASE_BACKUP_JOB, input.databaseSchedule, {
    runAsUser: uid,
    initContainers: dumps,
    containers: [
      {
        name: "upload",
        image: input.images.cloudSdk,
        command: ["bash", "-c", dumpUploadScript(DUMP_DIR, input.bucket)],
        env: gcloudEnv,
        securityContext: containerSecurity(uid),
        resources,
        volumeMounts: [
          { name: "backup", mountPath: DUMP_DIR, readOnly: true },
          { name: "tmp", mountPath: "/tmp" },
        ],
      },
    ],
    volumes: [
      { name: "backup", emptyDir: { sizeLimit: "20Gi" } },
      { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
      ...caVolumes,
    ],
  });
}

/** The media copy: a tar of local_content + local_thumbnails streamed to a new object. */
export function mediaBackupCronJob(input: BackupJobsInput): ICronJob {
  return cronJob(input, MEDIA_BACKUP_JOB, input.mediaSchedule, {
    runAsUser: input.media.runAsUser,
    // The media PVC is ReadWriteOnce: a second pod can mount it only on the node where Synapse runs.
    affinity: {
      podAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          {
            labelSelector: { matchLabels: { ...input.media.synapsePodSelector } },
            topologyKey: "kubernetes.io/hostname",
          },
        ],
      },
    },
    containers: [
      {
        name: "archive",
        image: input.images.cloudSdk,
        command: ["bash", "-c", mediaBackupScript(MEDIA_DIR, input.bucket)],
        env: gcloudEnv,
        securityContext: containerSecurity(input.media.runAsUser),
        resources,
        volumeMounts: [
          { name: "media", mountPath: MEDIA_DIR, subPath: input.media.subPath, readOnly: true },
          { name: "tmp", mountPath: "/tmp" },
        ],
      },
    ],
    volumes: [
      { name: "media", persistentVolumeClaim: { claimName: input.media.claimName, readOnly: true } },
      { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
    ],
  });
}
