// What CI needs before the first `pulumi up` (pure): the state bucket, the KMS key per stack that encrypts its
// secrets, and two GitHub identities federated through Workload Identity (no key): `preview` for pull requests
// (reads state, decrypts, sees the project) and `deploy` for main (changes the stack's resources).

export interface BootstrapInput {
  /** GCP project that hosts the cluster, the state and the keys. */
  readonly project: string;
  /** Region of the bucket and key ring, e.g. `europe-west1`. */
  readonly region: string;
  /** `owner/name` of the GitHub repository allowed to authenticate. */
  readonly repository: string;
  readonly stacks: readonly string[];
}

/** Roles the deploy identity holds on the project: what the stacks create (GKE objects, Cloud SQL, buckets, IAM). */
export const DEPLOY_PROJECT_ROLES = [
  "roles/container.developer",
  "roles/cloudsql.admin",
  "roles/storage.admin",
  "roles/iam.serviceAccountAdmin",
  "roles/resourcemanager.projectIamAdmin",
  "roles/compute.networkViewer",
] as const;

/** The preview identity only reads (a preview changes nothing). */
export const PREVIEW_PROJECT_ROLES = ["roles/viewer", "roles/container.viewer"] as const;

/** The key ring that holds one key per stack. */
export const KEY_RING = "pulumi";
/** The KMS key that encrypts a stack's secrets. */
export const stackKeyName = (stack: string) => `pulumi-${stack}`;

/** A stack's secrets provider (`secretsprovider:` of its stack file): its key in the bootstrap's key ring. */
export const secretsProviderUrl = (project: string, region: string, stack: string) =>
  `gcpkms://projects/${project}/locations/${region}/keyRings/${KEY_RING}/cryptoKeys/${stackKeyName(stack)}`;

export function bootstrapPlan(input: BootstrapInput) {
  if (!/^[\w.-]+\/[\w.-]+$/.test(input.repository)) {
    throw new Error(`repository must be "owner/name" as GitHub spells it, got "${input.repository}"`);
  }
  if (input.stacks.length === 0) throw new Error("stacks is empty: name at least one stack (staging, prod)");
  const pool = "github";
  return {
    stateBucket: {
      name: `${input.project}-pulumi-state`,
      location: input.region,
      uniformBucketLevelAccess: true,
      publicAccessPrevention: "enforced",
      // Every state write is a new version: a bad update can be rolled back by restoring the previous object.
      versioning: { enabled: true },
      forceDestroy: false,
      lifecycleRules: [
        { action: { type: "Delete" }, condition: { daysSinceNoncurrentTime: 90, withState: "ARCHIVED" } },
      ],
    },
    keyRing: { name: KEY_RING, location: input.region },
    /** One key per stack, rotated every 90 days; `gcpkms://<id>` is the stack's secrets provider. */
    keys: input.stacks.map((stack) => ({
      stack,
      name: stackKeyName(stack),
      rotationPeriod: `${90 * 24 * 3600}s`,
    })),
    /**
     * The bridge image's Artifact Registry repository (multi-region `europe`: europe-docker.pkg.dev): tags are
     * immutable, and both stacks deploy by digest from here, so prod runs the exact image staging ran.
     */
    imageRepository: {
      repositoryId: "nova",
      location: "europe",
      format: "DOCKER",
      dockerConfig: { immutableTags: true },
      url: `europe-docker.pkg.dev/${input.project}/nova/nova-bridge`,
    },
    pool: { id: pool, displayName: "GitHub Actions" },
    provider: {
      id: "github-oidc",
      issuerUri: "https://token.actions.githubusercontent.com",
      attributeMapping: {
        "google.subject": "assertion.sub",
        "attribute.repository": "assertion.repository",
        "attribute.ref": "assertion.ref",
      },
      // Tokens of any other repository are refused before any binding is looked at.
      attributeCondition: `assertion.repository == "${input.repository}"`,
    },
    identities: {
      preview: {
        accountId: "pulumi-preview",
        /** Any workflow run of the repository (pull requests included). */
        principal: (poolName: string) =>
          `principalSet://iam.googleapis.com/${poolName}/attribute.repository/${input.repository}`,
        projectRoles: PREVIEW_PROJECT_ROLES,
        keyRole: "roles/cloudkms.cryptoKeyDecrypter",
        stateRole: "roles/storage.objectUser",
        imageRole: "roles/artifactregistry.reader",
      },
      deploy: {
        accountId: "pulumi-deploy",
        /** Only runs on main (merges), never a pull request's code. */
        principal: (poolName: string) =>
          `principalSet://iam.googleapis.com/${poolName}/attribute.ref/refs/heads/main`,
        projectRoles: DEPLOY_PROJECT_ROLES,
        keyRole: "roles/cloudkms.cryptoKeyEncrypterDecrypter",
        stateRole: "roles/storage.objectUser",
        /** The image job pushes the bridge image (main only, like the deploys). */
        imageRole: "roles/artifactregistry.writer",
      },
    },
  };
}
