import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { CronJob } from "kubernetes-models/batch/v1/CronJob";
import { describe, expect, it } from "vitest";
import { PSQL_IMAGE } from "../database/setup-spec.ts";
import { unknownFields } from "../testing/strict-fields.ts";
import { backupBucketArgs, workloadIdentityMember } from "./cloud.ts";
import type { BackupArgs } from "./index.ts";
import {
  type BackupJobsInput,
  DATABASE_BACKUP_JOB,
  DEFAULT_IMAGES,
  DEFAULT_SCHEDULES,
  databaseBackupCronJob,
  dumpUploadScript,
  longestScheduleGapSeconds,
  MEDIA_BACKUP_JOB,
  mediaBackupCronJob,
  mediaBackupScript,
  plannedCronJobs,
  SYNAPSE_EXCLUDED_TABLE_DATA,
  shellQuote,
} from "./plan.ts";

const input: BackupJobsInput = {
  namespace: "nova-staging",
  labels: { "app.kubernetes.io/part-of": "nova-matrix" },
  serviceAccountName: "nova-matrix-backup",
  bucket: "nova-staging-matrix-backups",
  images: DEFAULT_IMAGES,
  databaseSchedule: "0 3 * * *",
  mediaSchedule: "30 3 * * *",
  databases: [
    {
      database: "synapse",
      host: "postgres",
      port: 5432,
      user: "synapse",
      excludeTableData: SYNAPSE_EXCLUDED_TABLE_DATA,
      passwordSecret: { name: "matrix-synapse-db", key: "password" },
    },
    {
      database: "nova_bridge",
      host: "postgres",
      port: 5432,
      user: "nova_bridge",
      excludeTableData: [],
      passwordSecret: { name: "nova-matrix-bridge-db", key: "password" },
    },
  ],
  media: {
    claimName: "matrix-synapse-data",
    subPath: "media",
    runAsUser: 991,
    synapsePodSelector: { app: "matrix-synapse" },
  },
};

const podOf = (job: ReturnType<typeof databaseBackupCronJob>) => {
  const spec = job.spec?.jobTemplate.spec?.template.spec;
  if (!spec) throw new Error("no pod spec");
  return spec;
};

describe("backup CronJobs", () => {
  for (const [kind, job] of [
    ["database", databaseBackupCronJob(input)],
    ["media", mediaBackupCronJob(input)],
  ] as const) {
    it(`${kind}: valid, named, restricted, limited, pinned images, no secret literal`, () => {
      new CronJob(job).validate();
      expect(unknownFields(job, (data) => CronJob.prototype.validate.call(data))).toEqual([]);
      expect(job.metadata?.name).toMatch(/^nova-matrix-(db|media)-backup$/);
      expect(job.spec?.concurrencyPolicy).toBe("Forbid");
      const pod = podOf(job);
      expect(pod.serviceAccountName).toBe("nova-matrix-backup");
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: "RuntimeDefault" },
      });
      for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
        expect(container.securityContext).toMatchObject({
          runAsNonRoot: true,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ["ALL"] },
        });
        expect(container.resources?.limits).toMatchObject({
          cpu: expect.any(String),
          memory: expect.any(String),
        });
        expect(container.image).toMatch(/:[\w.-]+$/);
        expect(container.image).not.toMatch(/:latest$/);
        for (const env of container.env ?? []) {
          if (/PASSWORD|TOKEN|SECRET/i.test(env.name)) {
            expect(env.value, env.name).toBeUndefined();
            expect(env.valueFrom?.secretKeyRef).toBeDefined();
          }
        }
      }
    });
  }

  it("database: one pg_dump per database, Synapse's without the one-time keys, then one upload", () => {
    const pod = podOf(databaseBackupCronJob(input));
    const commands = (pod.initContainers ?? []).map((c) => c.command ?? []);
    expect(commands.map((c) => c.find((a) => a.startsWith("--dbname=")))).toEqual([
      "--dbname=synapse",
      "--dbname=nova_bridge",
    ]);
    expect(commands[0]).toContain("--exclude-table-data=e2e_one_time_keys_json");
    expect(commands[1]?.some((a) => a.startsWith("--exclude-table-data"))).toBe(false);
    expect(commands.every((c) => c[0] === "pg_dump" && c.includes("--format=custom"))).toBe(true);
    expect(pod.containers.map((c) => c.name)).toEqual(["upload"]);
    // objectCreator cannot delete the parts a parallel composite upload leaves behind.
    expect(pod.containers[0]?.env).toContainEqual({
      name: "CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED",
      value: "False",
    });
    expect(pod.containers[0]?.command?.[2]).toContain("gs://nova-staging-matrix-backups/postgres/");
  });

  it("database: verifies a Cloud SQL server against its CA, from a Secret, without a password anywhere in the spec", () => {
    const [synapse] = input.databases;
    if (!synapse) throw new Error("no database");
    const pod = podOf(
      databaseBackupCronJob({
        ...input,
        databases: [{ ...synapse, serverCa: { name: "matrix-synapse-db-setup", key: "ca.pem" } }],
      }),
    );
    const dump = pod.initContainers?.[0];
    expect(dump?.env).toContainEqual({ name: "PGSSLMODE", value: "verify-ca" });
    expect(dump?.env).toContainEqual({ name: "PGSSLROOTCERT", value: "/tls/0/ca.pem" });
    expect(dump?.volumeMounts).toContainEqual({ name: "server-ca-0", mountPath: "/tls/0", readOnly: true });
    expect(pod.volumes).toContainEqual({
      name: "server-ca-0",
      secret: { secretName: "matrix-synapse-db-setup", items: [{ key: "ca.pem", path: "ca.pem" }] },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    // In-cluster staging: no TLS settings at all.
    const plain = podOf(databaseBackupCronJob(input)).initContainers?.[0]?.env?.map((e) => e.name);
    expect(plain).toEqual(["PGPASSWORD", "PGCONNECT_TIMEOUT"]);
  });

  it("media: mounts the claim read-only on Synapse's node (RWO) and archives both directories", () => {
    const pod = podOf(mediaBackupCronJob(input));
    expect(pod.volumes?.find((v) => v.name === "media")?.persistentVolumeClaim).toEqual({
      claimName: "matrix-synapse-data",
      readOnly: true,
    });
    expect(pod.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.[0]).toMatchObject({
      labelSelector: { matchLabels: { app: "matrix-synapse" } },
      topologyKey: "kubernetes.io/hostname",
    });
    const script = pod.containers[0]?.command?.[2] ?? "";
    expect(script).toContain("local_content local_thumbnails");
    expect(pod.securityContext?.runAsUser).toBe(991);
  });

  it("dumps with the same PostgreSQL client image as the database setup Job", () => {
    expect(DEFAULT_IMAGES.postgres).toBe(PSQL_IMAGE);
  });

  it("quotes shell arguments", () => {
    expect(shellQuote("/data/media")).toBe("/data/media");
    expect(shellQuote("it's here")).toBe(`'it'\\''s here'`);
    expect(mediaBackupScript("/m m", "b")).toContain(`if [ -d '/m m'/"$dir" ]`);
  });
});

describe("backup scripts, run by bash with a stand-in gcloud that records its arguments", () => {
  const runScript = async (script: (dir: string) => string, setup: (dir: string) => Promise<void>) => {
    const dir = await mkdtemp(join(tmpdir(), "nova-backup-script-"));
    try {
      await mkdir(join(dir, "bin"));
      await writeFile(
        join(dir, "bin", "gcloud"),
        `#!/bin/sh\necho "$@" >> "${dir}/gcloud.args"\nif [ "$3" = "-" ]; then cat > "${dir}/stdin"; fi\n`,
        { mode: 0o755 },
      );
      await setup(dir);
      const result = spawnSync("bash", ["-c", script(dir)], {
        env: { ...process.env, PATH: `${dir}/bin:${process.env.PATH}` },
        encoding: "utf8",
      });
      const args = await readFile(join(dir, "gcloud.args"), "utf8").catch(() => "");
      const listing = spawnSync("tar", ["--list", `--file=${dir}/stdin`], { encoding: "utf8" }).stdout ?? "";
      return { status: result.status, output: `${result.stdout}${result.stderr}`, args, listing };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  it("media: archives local_content even before any thumbnail exists", async () => {
    const result = await runScript(
      (dir: string) => mediaBackupScript(`${dir}/media`, "bkt"),
      async (dir) => {
        await mkdir(join(dir, "media", "local_content", "ab"), { recursive: true });
        await writeFile(join(dir, "media", "local_content", "ab", "file"), "bytes");
      },
    );
    expect(result.status, result.output).toBe(0);
    expect(result.args).toMatch(/^storage cp - gs:\/\/bkt\/media\/\d{8}T\d{6}Z\.tar$/m);
    expect(result.listing).toContain("local_content/ab/file");
  });

  it("media: does nothing (and succeeds) before the first upload", async () => {
    const result = await runScript(
      (dir: string) => mediaBackupScript(`${dir}/media`, "bkt"),
      async (dir) => {
        await mkdir(join(dir, "media"));
      },
    );
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain("nothing to archive");
    expect(result.args).toBe("");
  });

  it("media: a failing tar fails the job (pipefail)", async () => {
    const result = await runScript(
      (dir: string) => mediaBackupScript(`${dir}/media`, "bkt"),
      async (dir) => {
        await mkdir(join(dir, "media", "local_content"), { recursive: true });
        await mkdir(join(dir, "bin"), { recursive: true });
        await writeFile(join(dir, "bin", "tar"), "#!/bin/sh\nexit 2\n", { mode: 0o755 });
      },
    );
    expect(result.status).not.toBe(0);
  });

  it("database: uploads every dump under one new timestamped prefix", async () => {
    const result = await runScript(
      (dir: string) => dumpUploadScript(`${dir}/backup`, "bkt"),
      async (dir) => {
        await mkdir(join(dir, "backup"));
        await writeFile(join(dir, "backup", "synapse.dump"), "x");
      },
    );
    expect(result.status, result.output).toBe(0);
    expect(result.args).toMatch(
      /^storage cp \S+\/backup\/synapse\.dump gs:\/\/bkt\/postgres\/\d{8}T\d{6}Z\/$/m,
    );
  });
});

describe("backup bucket", () => {
  it("is versioned, private, uniformly accessed and expires old backups", () => {
    const args = backupBucketArgs({
      name: "b",
      location: "europe-west1",
      retentionDays: 30,
      noncurrentRetentionDays: 7,
    });
    expect(args).toMatchObject({
      uniformBucketLevelAccess: true,
      publicAccessPrevention: "enforced",
      versioning: { enabled: true },
      forceDestroy: false,
    });
    expect(args.lifecycleRules).toEqual([
      { action: { type: "Delete" }, condition: { age: 30, withState: "LIVE" } },
      { action: { type: "Delete" }, condition: { daysSinceNoncurrentTime: 7, withState: "ARCHIVED" } },
    ]);
  });

  it("rejects a retention that is not a positive number of days, naming the field", () => {
    expect(() =>
      backupBucketArgs({ name: "b", location: "eu", retentionDays: 0, noncurrentRetentionDays: 7 }),
    ).toThrow(/retentionDays must be a whole number of days >= 1, got 0/);
    expect(() =>
      backupBucketArgs({ name: "b", location: "eu", retentionDays: 3, noncurrentRetentionDays: 1.5 }),
    ).toThrow(/noncurrentRetentionDays/);
  });

  it("names the Kubernetes service account the GKE way", () => {
    expect(workloadIdentityMember("nova-prod", "nova-staging", "nova-matrix-backup")).toBe(
      "serviceAccount:nova-prod.svc.id.goog[nova-staging/nova-matrix-backup]",
    );
  });
});

describe("Backup component (Pulumi mocks)", () => {
  it("creates the bucket, an object-create-only GSA bound by Workload Identity, the KSA and both CronJobs; no key", async () => {
    const created: { type: string; name: string; inputs: Record<string, unknown> }[] = [];
    pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          created.push({ type: args.type, name: args.name, inputs: args.inputs });
          const state = { ...args.inputs };
          if (args.type === "gcp:serviceaccount/account:Account") {
            state.email = `${args.inputs.accountId}@nova-prod.iam.gserviceaccount.com`;
            state.name = `projects/nova-prod/serviceAccounts/${state.email}`;
          }
          return { id: `${args.name}-id`, state };
        },
        call: (args) => args.inputs,
      },
      "nova-matrix",
      "test",
      false,
    );
    const { Backup } = await import("./index.ts");
    const args: BackupArgs = {
      project: "nova-prod",
      namespace: "nova-staging",
      labels: input.labels,
      bucket: {
        name: "nova-staging-matrix-backups",
        location: "europe-west1",
        retentionDays: 30,
        noncurrentRetentionDays: 7,
      },
      databases: input.databases,
      media: input.media,
    };
    const backup = new Backup("backup", args);
    const names = await new Promise<string[]>((resolve) => backup.cronJobNames.apply(resolve));
    expect([...names].sort()).toEqual(["nova-matrix-db-backup", "nova-matrix-media-backup"]);
    const byType = (type: string) => created.filter((c) => c.type === type);
    expect(byType("gcp:storage/bucket:Bucket")[0]?.inputs).toMatchObject({
      publicAccessPrevention: "enforced",
    });
    expect(byType("gcp:storage/bucketIAMMember:BucketIAMMember").map((c) => c.inputs.role)).toEqual([
      "roles/storage.objectCreator",
    ]);
    expect(byType("gcp:serviceaccount/iAMMember:IAMMember")[0]?.inputs).toMatchObject({
      role: "roles/iam.workloadIdentityUser",
      member: "serviceAccount:nova-prod.svc.id.goog[nova-staging/nova-matrix-backup]",
    });
    expect(byType("kubernetes:core/v1:ServiceAccount")[0]?.inputs.metadata).toMatchObject({
      name: "nova-matrix-backup",
      annotations: {
        "iam.gke.io/gcp-service-account": "nova-matrix-backup@nova-prod.iam.gserviceaccount.com",
      },
    });
    expect(created.some((c) => /key/i.test(c.type))).toBe(false);
  });
});

describe("the backup CronJobs a stack runs, as the component creates them and the alerts watch them", () => {
  it("dumps only when there are databases to dump; the media archive always; default or configured schedules", () => {
    expect(plannedCronJobs({ dumps: true })).toEqual([
      { which: "database", name: DATABASE_BACKUP_JOB, schedule: DEFAULT_SCHEDULES.database },
      { which: "media", name: MEDIA_BACKUP_JOB, schedule: DEFAULT_SCHEDULES.media },
    ]);
    expect(plannedCronJobs({ dumps: false, mediaSchedule: "0 4 * * 0" })).toEqual([
      { which: "media", name: MEDIA_BACKUP_JOB, schedule: "0 4 * * 0" },
    ]);
  });

  it("the longest gap between two runs of a schedule", () => {
    expect(longestScheduleGapSeconds("30 3 * * *")).toBe(24 * 3600);
    expect(longestScheduleGapSeconds("0 4 * * 0")).toBe(7 * 24 * 3600);
    expect(longestScheduleGapSeconds("*/15 * * * *")).toBe(15 * 60);
    // Twice a day at uneven hours: the longer of the two gaps.
    expect(longestScheduleGapSeconds("0 3,9 * * *")).toBe(18 * 3600);
    // Monthly: the longest month.
    expect(longestScheduleGapSeconds("0 3 1 * *")).toBe(31 * 24 * 3600);
  });

  it("refuses a schedule that is not cron, naming it", () => {
    expect(() => longestScheduleGapSeconds("every night")).toThrow(
      /backup schedule "every night" is not a cron/,
    );
  });
});
