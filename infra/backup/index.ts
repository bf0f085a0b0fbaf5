// Backups of the stack: the GCS bucket, the Workload Identity chain (GSA with object-create rights on that bucket
// only, KSA bound to it) and the CronJobs (database dumps when there are databases to dump, the media archive).
// Specs come from plan.ts / cloud.ts.
import * as gcp from "@pulumi/gcp";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  BACKUP_BUCKET_ROLE,
  backupBucketArgs,
  workloadIdentityAnnotation,
  workloadIdentityMember,
} from "./cloud.ts";
import {
  type DatabaseToDump,
  DEFAULT_IMAGES,
  DEFAULT_SCHEDULES,
  databaseBackupCronJob,
  type JobImages,
  mediaBackupCronJob,
  plannedCronJobs,
} from "./plan.ts";

export interface BackupArgs {
  /** GCP project of the cluster (Workload Identity pool `<project>.svc.id.goog`). */
  readonly project: string;
  readonly namespace: pulumi.Input<string>;
  readonly labels: Readonly<Record<string, string>>;
  readonly bucket: {
    readonly name: string;
    readonly location: string;
    readonly retentionDays: number;
    readonly noncurrentRetentionDays: number;
  };
  /**
   * Databases to dump: Synapse's and the bridge's on an in-cluster server; none on Cloud SQL (its automated backups
   * and point-in-time recovery hold them), and then no dump CronJob at all.
   */
  readonly databases: readonly DatabaseToDump[];
  readonly media: {
    readonly claimName: string;
    readonly subPath: string;
    readonly runAsUser: number;
    readonly synapsePodSelector: Readonly<Record<string, string>>;
  };
  /** Cron schedules, UTC. Default: dumps at 03:00, media at 03:30. */
  readonly databaseSchedule?: string;
  readonly mediaSchedule?: string;
  readonly images?: JobImages;
  /** Name of the Kubernetes and Google service accounts. */
  readonly serviceAccountName?: string;
}

export class Backup extends pulumi.ComponentResource {
  public readonly bucketName: pulumi.Output<string>;
  public readonly googleServiceAccountEmail: pulumi.Output<string>;
  public readonly cronJobNames: pulumi.Output<string[]>;

  constructor(name: string, args: BackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:backup:Backup", name, {}, opts);
    const parent = { parent: this };
    const accountName = args.serviceAccountName ?? "nova-matrix-backup";

    const bucket = new gcp.storage.Bucket(
      `${name}-bucket`,
      { project: args.project, ...backupBucketArgs(args.bucket) },
      { ...parent, protect: true },
    );
    const gsa = new gcp.serviceaccount.Account(
      `${name}-gsa`,
      {
        project: args.project,
        accountId: accountName,
        displayName: "nova-matrix backups (object create only)",
      },
      parent,
    );
    new gcp.storage.BucketIAMMember(
      `${name}-object-creator`,
      {
        bucket: bucket.name,
        role: BACKUP_BUCKET_ROLE,
        member: pulumi.interpolate`serviceAccount:${gsa.email}`,
      },
      parent,
    );
    new gcp.serviceaccount.IAMMember(
      `${name}-workload-identity`,
      {
        serviceAccountId: gsa.name,
        role: "roles/iam.workloadIdentityUser",
        member: pulumi
          .output(args.namespace)
          .apply((ns) => workloadIdentityMember(args.project, ns, accountName)),
      },
      parent,
    );
    const ksa = new k8s.core.v1.ServiceAccount(
      `${name}-ksa`,
      {
        metadata: {
          name: accountName,
          namespace: args.namespace,
          labels: { ...args.labels },
          annotations: gsa.email.apply(workloadIdentityAnnotation),
        },
        // The jobs need no Kubernetes API access.
        automountServiceAccountToken: false,
      },
      parent,
    );

    const jobs = pulumi.all([pulumi.output(args.namespace), bucket.name]).apply(([namespace, bucketName]) => {
      const input = {
        namespace,
        labels: args.labels,
        serviceAccountName: accountName,
        bucket: bucketName,
        images: args.images ?? DEFAULT_IMAGES,
        databaseSchedule: args.databaseSchedule ?? DEFAULT_SCHEDULES.database,
        mediaSchedule: args.mediaSchedule ?? DEFAULT_SCHEDULES.media,
        databases: args.databases,
        media: args.media,
      };
      return { database: databaseBackupCronJob(input), media: mediaBackupCronJob(input) };
    });
    const cronJob = (resourceName: string, which: "database" | "media") => {
      const spec = jobs.apply((j) => j[which]);
      return new k8s.batch.v1.CronJob(
        resourceName,
        {
          metadata: spec.apply((s) => ({ ...s.metadata, name: s.metadata?.name ?? resourceName })),
          spec: spec.apply((s) => s.spec as k8s.types.input.batch.v1.CronJobSpec),
        },
        { ...parent, dependsOn: [ksa] },
      );
    };
    const created = plannedCronJobs({ ...args, dumps: args.databases.length > 0 }).map((job) =>
      cronJob(`${name}-${job.which}`, job.which),
    );

    this.bucketName = bucket.name;
    this.googleServiceAccountEmail = gsa.email;
    this.cronJobNames = pulumi.all(created.map((job) => job.metadata.name));
    this.registerOutputs({
      bucketName: this.bucketName,
      googleServiceAccountEmail: this.googleServiceAccountEmail,
      cronJobNames: this.cronJobNames,
    });
  }
}
