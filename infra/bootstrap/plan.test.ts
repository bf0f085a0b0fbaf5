import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { bootstrapPlan } from "./plan.ts";

const input = {
  project: "nova-prod",
  region: "europe-west1",
  repository: "nova/nova-matrix",
  stacks: ["staging", "prod"],
};

describe("bootstrap plan", () => {
  it("a private, versioned state bucket and one rotated KMS key per stack", () => {
    const plan = bootstrapPlan(input);
    expect(plan.stateBucket).toMatchObject({
      name: "nova-prod-pulumi-state",
      uniformBucketLevelAccess: true,
      publicAccessPrevention: "enforced",
      versioning: { enabled: true },
      forceDestroy: false,
    });
    expect(plan.keys.map((k) => [k.stack, k.name, k.rotationPeriod])).toEqual([
      ["staging", "pulumi-staging", "7776000s"],
      ["prod", "pulumi-prod", "7776000s"],
    ]);
  });

  it("one immutable-tag image repository, pushed to by the deploy identity only, the stacks' bridge.image", () => {
    const plan = bootstrapPlan(input);
    expect(plan.imageRepository).toMatchObject({ format: "DOCKER", dockerConfig: { immutableTags: true } });
    expect(plan.imageRepository.url).toBe("europe-docker.pkg.dev/nova-prod/nova/nova-bridge");
    expect(plan.identities.deploy.imageRole).toBe("roles/artifactregistry.writer");
    expect(plan.identities.preview.imageRole).toBe("roles/artifactregistry.reader");
  });

  it("accepts only this repository's GitHub tokens; deploy only from main, preview read-only", () => {
    const plan = bootstrapPlan(input);
    expect(plan.provider.attributeCondition).toBe('assertion.repository == "nova/nova-matrix"');
    const pool = "projects/1/locations/global/workloadIdentityPools/github";
    expect(plan.identities.deploy.principal(pool)).toBe(
      `principalSet://iam.googleapis.com/${pool}/attribute.ref/refs/heads/main`,
    );
    expect(plan.identities.preview.principal(pool)).toBe(
      `principalSet://iam.googleapis.com/${pool}/attribute.repository/nova/nova-matrix`,
    );
    expect(plan.identities.preview.keyRole).toBe("roles/cloudkms.cryptoKeyDecrypter");
    expect(plan.identities.preview.projectRoles.every((role) => /viewer$/i.test(role))).toBe(true);
  });

  it("rejects a malformed repository or no stack, naming the field", () => {
    expect(() => bootstrapPlan({ ...input, repository: "nova-matrix" })).toThrow(
      /repository must be "owner\/name"/,
    );
    expect(() => bootstrapPlan({ ...input, stacks: [] })).toThrow(/stacks is empty/);
  });
});

describe("bootstrap program (Pulumi mocks)", () => {
  it("declares the bucket, keys, pool, provider and two identities, with no service account key", async () => {
    const created: { type: string; inputs: Record<string, unknown> }[] = [];
    pulumi.runtime.setAllConfig({
      "nova-matrix-bootstrap:project": "nova-prod",
      "nova-matrix-bootstrap:region": "europe-west1",
      "nova-matrix-bootstrap:repository": "nova/nova-matrix",
    });
    pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          created.push({ type: args.type, inputs: args.inputs });
          const state: Record<string, unknown> = { ...args.inputs };
          if (args.type === "gcp:serviceaccount/account:Account")
            state.email = `${args.inputs.accountId}@x.iam`;
          if (args.type === "gcp:iam/workloadIdentityPool:WorkloadIdentityPool") {
            state.name = "projects/1/locations/global/workloadIdentityPools/github";
          }
          return { id: `${args.name}-id`, state };
        },
        call: (args) => args.inputs,
      },
      "nova-matrix-bootstrap",
      "bootstrap",
      false,
    );
    const program = await import("./index.ts");
    const bucket = await new Promise((resolve) => program.PULUMI_STATE_BUCKET.apply(resolve));
    expect(bucket).toBe("nova-prod-pulumi-state");
    const types = created.map((c) => c.type);
    expect(types.filter((t) => t === "gcp:kms/cryptoKey:CryptoKey")).toHaveLength(2);
    expect(types).toContain("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider");
    expect(types.filter((t) => t === "gcp:serviceaccount/account:Account")).toHaveLength(2);
    expect(types.some((t) => /key:Key$/.test(t))).toBe(false);
    expect(types).toContain("gcp:artifactregistry/repository:Repository");
    const repository = await new Promise((resolve) => program.BRIDGE_IMAGE_REPOSITORY.apply(resolve));
    expect(repository).toBe("europe-docker.pkg.dev/nova-prod/nova/nova-bridge");
    const wif = created
      .filter((c) => c.type === "gcp:serviceaccount/iAMMember:IAMMember")
      .map((c) => c.inputs.member);
    expect(wif).toContain(
      "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/github/attribute.ref/refs/heads/main",
    );
  });
});
