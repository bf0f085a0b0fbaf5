// The GCS side of backups (pure): the bucket's settings and the Workload Identity names. No key file anywhere:
// the job's Kubernetes service account impersonates a Google service account that may only create objects.

export interface BucketInput {
  readonly name: string;
  /** A region (or multi-region) such as `europe-west1`. */
  readonly location: string;
  /** Days a backup object is kept. */
  readonly retentionDays: number;
  /** Days a replaced or deleted object's old version is kept (versioning protects against overwrite and delete). */
  readonly noncurrentRetentionDays: number;
}

/** Arguments of `gcp.storage.Bucket` (plain values, so the test reads them without Pulumi). */
export function backupBucketArgs(input: BucketInput) {
  if (!Number.isInteger(input.retentionDays) || input.retentionDays < 1) {
    throw new Error(`backup retentionDays must be a whole number of days >= 1, got ${input.retentionDays}`);
  }
  if (!Number.isInteger(input.noncurrentRetentionDays) || input.noncurrentRetentionDays < 1) {
    throw new Error(
      `backup noncurrentRetentionDays must be a whole number of days >= 1, got ${input.noncurrentRetentionDays}`,
    );
  }
  return {
    name: input.name,
    location: input.location,
    storageClass: "STANDARD",
    uniformBucketLevelAccess: true,
    publicAccessPrevention: "enforced",
    versioning: { enabled: true },
    // Deleting the stack must not delete the backups.
    forceDestroy: false,
    lifecycleRules: [
      { action: { type: "Delete" }, condition: { age: input.retentionDays, withState: "LIVE" } },
      {
        action: { type: "Delete" },
        condition: { daysSinceNoncurrentTime: input.noncurrentRetentionDays, withState: "ARCHIVED" },
      },
    ],
  };
}

/** The only role the backup identity gets, and only on the backup bucket. */
export const BACKUP_BUCKET_ROLE = "roles/storage.objectCreator";

/** The IAM member a Kubernetes service account is known by to Google (GKE Workload Identity). */
export const workloadIdentityMember = (project: string, namespace: string, serviceAccount: string) =>
  `serviceAccount:${project}.svc.id.goog[${namespace}/${serviceAccount}]`;

/** The annotation that binds a Kubernetes service account to a Google service account. */
export const workloadIdentityAnnotation = (googleServiceAccountEmail: string) => ({
  "iam.gke.io/gcp-service-account": googleServiceAccountEmail,
});
