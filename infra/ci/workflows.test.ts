// The deployment workflow, read as data: what runs on a pull request and on a merge, with which identity.
// (GitHub runs it; these checks keep its promises from drifting: previews of every stack, prod behind approval,
// no long-lived credential, the Pulumi CLI at the SDK's release.)
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, string | boolean>;
}
interface Job {
  if?: string;
  needs?: string | string[];
  environment?: string;
  permissions?: Record<string, string>;
  strategy?: { matrix: { stack: string[] } };
  steps: Step[];
}
const root = new URL("../../", import.meta.url);
const text = readFileSync(new URL(".github/workflows/pulumi.yml", root), "utf8");
const workflow = parse(text) as {
  on: Record<string, unknown>;
  env: Record<string, string>;
  permissions: Record<string, string>;
  jobs: Record<string, Job>;
};
const pulumiStep = (job: Job) => {
  const step = job.steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
  if (!step?.with) throw new Error("job has no pulumi/actions step");
  return step.with;
};

describe(".github/workflows/pulumi.yml", () => {
  it("previews every stack on pull requests and comments the diff", () => {
    const preview = workflow.jobs.preview;
    expect(preview?.if).toContain("pull_request");
    const stacks = preview?.strategy?.matrix.stack ?? [];
    expect(stacks).toEqual(["staging", "prod"]);
    for (const stack of stacks) expect(existsSync(new URL(`Pulumi.${stack}.yaml`, root)), stack).toBe(true);
    expect(pulumiStep(preview as Job)).toMatchObject({
      command: "preview",
      "comment-on-pr": true,
      diff: true,
    });
  });

  it("updates staging on a merge to main, and prod only after it, behind the production environment", () => {
    const staging = workflow.jobs["up-staging"] as Job;
    const prod = workflow.jobs["up-prod"] as Job;
    expect(staging.if).toContain("refs/heads/main");
    expect(pulumiStep(staging)).toMatchObject({ command: "up", "stack-name": "staging" });
    expect(staging.environment).toBe("staging");
    expect(prod.needs).toBe("up-staging");
    expect(prod.environment).toBe("production");
    expect(pulumiStep(prod)).toMatchObject({ command: "up", "stack-name": "prod" });
  });

  it("checks types and lint on every change first, with no cloud access (so forks get it too)", () => {
    const check = workflow.jobs.check as Job;
    expect(check.if).toBeUndefined();
    expect(check.permissions).toBeUndefined();
    expect(check.steps.map((s) => s.run).filter(Boolean)).toContain("npm run check");
    expect(check.steps.some((s) => s.uses?.startsWith("google-github-actions/auth@"))).toBe(false);
    expect(workflow.jobs.preview?.needs).toBe("check");
    expect(workflow.jobs["up-staging"]?.needs).toBe("check");
  });

  it("renders the offline diff of every stack on pull requests, with no cloud access, for the comment workflow", () => {
    const job = workflow.jobs["offline-diff"] as Job & { "runs-on": string };
    expect(job.if).toBe("github.event_name == 'pull_request'");
    expect(job.strategy?.matrix.stack).toEqual(["staging", "prod"]);
    expect(job.permissions).toBeUndefined();
    expect(job.steps.some((s) => s.uses?.startsWith("google-github-actions/auth@"))).toBe(false);
    expect(job.steps.find((s) => s.uses?.startsWith("actions/checkout@"))?.with).toMatchObject({
      "fetch-depth": 0,
    });
    const script = job.steps.map((s) => s.run ?? "").join("\n");
    expect(script).toContain('npm run --silent diff -- --stack "$STACK" --base "$BASE_REF"');
    expect(script).toContain("GITHUB_STEP_SUMMARY");
    const packageJson = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(packageJson.scripts.diff).toBe("node infra/render/diff-cli.ts");

    // The comment workflow runs in the base repository's context: it may write comments, so it never runs PR code.
    const comment = parse(
      readFileSync(new URL(".github/workflows/pulumi-diff-comment.yml", root), "utf8"),
    ) as {
      on: { workflow_run: { workflows: string[] } };
      permissions: Record<string, string>;
      jobs: Record<string, Job>;
    };
    expect(comment.on.workflow_run.workflows).toEqual(["pulumi"]);
    expect(comment.permissions).toEqual({ contents: "read" });
    const steps = Object.values(comment.jobs).flatMap((j) => j.steps);
    expect(steps.some((s) => s.uses?.startsWith("actions/checkout@"))).toBe(false);
    expect(steps.some((s) => s.run !== undefined)).toBe(false);
    expect(comment.jobs.comment?.permissions).toEqual({ actions: "read", "pull-requests": "write" });
  });

  it("authenticates by Workload Identity Federation only: OIDC token, no key, no Pulumi token", () => {
    expect(workflow.permissions).toEqual({ contents: "read" });
    const offline = new Set(["check", "offline-diff"]);
    for (const [name, job] of Object.entries(workflow.jobs).filter(([name]) => !offline.has(name))) {
      const auth = job.steps.find((s) => s.uses?.startsWith("google-github-actions/auth@"));
      expect(auth?.with, name).toHaveProperty("workload_identity_provider");
      expect(auth?.with, name).not.toHaveProperty("credentials_json");
      expect(job.permissions?.["id-token"], name).toBe("write");
    }
    const secrets = [...text.matchAll(/secrets\.([A-Z_]+)/g)].map((m) => m[1]);
    expect(new Set(secrets)).toEqual(new Set(["GITHUB_TOKEN"]));
    expect(text).not.toMatch(/PULUMI_ACCESS_TOKEN|PULUMI_CONFIG_PASSPHRASE/);
    expect(workflow.env.PULUMI_BACKEND_URL).toMatch(/^gs:\/\//);
  });

  it("pins every action to a major version and the CLI to the SDK's release", () => {
    const uses = Object.values(workflow.jobs).flatMap((job) =>
      job.steps.flatMap((s) => (s.uses ? [s.uses] : [])),
    );
    for (const action of uses) expect(action).toMatch(/@v\d+$/);
    const sdk = JSON.parse(
      readFileSync(new URL("node_modules/@pulumi/pulumi/package.json", root), "utf8"),
    ) as {
      version: string;
    };
    expect(workflow.env.PULUMI_VERSION).toBe(sdk.version);
  });
});
