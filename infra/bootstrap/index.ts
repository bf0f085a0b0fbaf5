// The bootstrap program (its own Pulumi project: infra/bootstrap/Pulumi.yaml), run once by a project owner with
// a local state backend: it creates what the main program's CI needs. See docs/operations.md#bootstrap.
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import { bootstrapPlan } from "./plan.ts";

const config = new pulumi.Config();
const plan = bootstrapPlan({
  project: config.require("project"),
  region: config.require("region"),
  repository: config.require("repository"),
  stacks: config.getObject<string[]>("stacks") ?? ["staging", "prod"],
});
const project = config.require("project");
const protect = { protect: true };

const state = new gcp.storage.Bucket("state", { project, ...plan.stateBucket }, protect);
const keyRing = new gcp.kms.KeyRing("pulumi", { project, ...plan.keyRing }, protect);
const keys = plan.keys.map(
  (key) =>
    new gcp.kms.CryptoKey(
      key.name,
      { name: key.name, keyRing: keyRing.id, rotationPeriod: key.rotationPeriod, purpose: "ENCRYPT_DECRYPT" },
      protect,
    ),
);
const { url: imageUrl, ...imageRepositoryArgs } = plan.imageRepository;
const images = new gcp.artifactregistry.Repository(
  "images",
  { project, description: "nova-matrix images, deployed by digest", ...imageRepositoryArgs },
  protect,
);
// The clusters' node service accounts pull the bridge image (members such as serviceAccount:<number>-compute@...).
for (const [index, member] of (config.getObject<string[]>("imagePullers") ?? []).entries()) {
  new gcp.artifactregistry.RepositoryIamMember(`image-puller-${index}`, {
    project,
    location: images.location,
    repository: images.name,
    role: "roles/artifactregistry.reader",
    member,
  });
}
const pool = new gcp.iam.WorkloadIdentityPool("github", {
  project,
  workloadIdentityPoolId: plan.pool.id,
  displayName: plan.pool.displayName,
});
const provider = new gcp.iam.WorkloadIdentityPoolProvider("github-oidc", {
  project,
  workloadIdentityPoolId: pool.workloadIdentityPoolId,
  workloadIdentityPoolProviderId: plan.provider.id,
  attributeMapping: plan.provider.attributeMapping,
  attributeCondition: plan.provider.attributeCondition,
  oidc: { issuerUri: plan.provider.issuerUri },
});

const accounts = Object.fromEntries(
  Object.entries(plan.identities).map(([role, identity]) => {
    const account = new gcp.serviceaccount.Account(identity.accountId, {
      project,
      accountId: identity.accountId,
      displayName: `GitHub Actions: pulumi ${role}`,
    });
    const member = pulumi.interpolate`serviceAccount:${account.email}`;
    new gcp.serviceaccount.IAMMember(`${identity.accountId}-wif`, {
      serviceAccountId: account.name,
      role: "roles/iam.workloadIdentityUser",
      member: pool.name.apply(identity.principal),
    });
    new gcp.storage.BucketIAMMember(`${identity.accountId}-state`, {
      bucket: state.name,
      role: identity.stateRole,
      member,
    });
    keys.forEach((key, index) => {
      new gcp.kms.CryptoKeyIAMMember(`${identity.accountId}-key-${index}`, {
        cryptoKeyId: key.id,
        role: identity.keyRole,
        member,
      });
    });
    new gcp.artifactregistry.RepositoryIamMember(`${identity.accountId}-images`, {
      project,
      location: images.location,
      repository: images.name,
      role: identity.imageRole,
      member,
    });
    for (const projectRole of identity.projectRoles) {
      new gcp.projects.IAMMember(`${identity.accountId}-${projectRole.replace("roles/", "")}`, {
        project,
        role: projectRole,
        member,
      });
    }
    return [role, account.email];
  }),
);

/** Repository variables for .github/workflows/pulumi.yml. */
export const PULUMI_STATE_BUCKET = state.name;
export const GCP_WORKLOAD_IDENTITY_PROVIDER = provider.name;
export const GCP_PREVIEW_SERVICE_ACCOUNT = accounts.preview;
export const GCP_DEPLOY_SERVICE_ACCOUNT = accounts.deploy;
/** The bridge image repository: the stack files' `nova-matrix:bridge.image` and the image job's push target. */
export const BRIDGE_IMAGE_REPOSITORY = images.name.apply(() => imageUrl);
/** `pulumi stack init <stack> --secrets-provider <this>` for each stack. */
export const secretsProviders = pulumi.all(
  keys.map((key, index) => key.id.apply((id) => [plan.keys[index]?.stack ?? "", `gcpkms://${id}`] as const)),
);
