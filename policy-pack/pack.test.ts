// The policy pack as `pulumi preview --policy-pack policy-pack` and `pulumi up --policy-pack policy-pack` run it:
// started by Pulumi's own runner and asked over its Analyzer gRPC service, so the pack's validateResource and
// validateStack functions get the arguments @pulumi/policy builds (inputs behind its unknown-checking proxy). Both
// stacks' rendered resources pass, in an update and in a first preview (unknown values skipped, never failed); then
// one deliberately bad resource per rule is reported, mandatory.
import { goodContainer, goodPod } from "@nova-matrix/infra/policy/fixtures";
import { KNOWN_AFTER_APPLY, POLICY_RULES } from "@nova-matrix/infra/policy/rules";
import { type ChildStackRun, runStackInChild } from "@nova-matrix/infra/testing/stack-process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Diagnostic, type Resource, type RunningPack, startPack } from "./analyzer-client.ts";
import { generatedSecrets } from "./policies.ts";

let pack: RunningPack;
beforeAll(async () => {
  pack = await startPack();
});
afterAll(async () => {
  await pack?.stop();
});

const PREVIEW_ADVISORY =
  /^can't run policy '[\w-]+' from policy pack 'nova-matrix@v0\.1\.0' during preview: /;

/** Every diagnostic of every resource, as the engine collects them: Analyze per resource, AnalyzeStack at the end. */
async function analyzeStack(stack: string, inputs: Resource[], outputs: Resource[]) {
  const perResource: (Diagnostic & { resource: string })[] = [];
  for (const resource of inputs)
    for (const diagnostic of await pack.analyze(stack, resource))
      perResource.push({ ...diagnostic, resource: `${resource.type}::${resource.name}` });
  return { perResource, stack: await pack.analyzeStack(stack, outputs) };
}

/** A rendered stack as the engine hands it to the pack: each resource's inputs (Analyze), then outputs (AnalyzeStack). */
function asAnalyzed(run: ChildStackRun): { inputs: Resource[]; outputs: Resource[] } {
  return {
    inputs: run.resources.map(({ type, name, inputs }) => ({ type, name, props: inputs })),
    outputs: Object.entries(run.resourceOutputs).map(([key, props]) => {
      const [type = "", name = ""] = key.split("::");
      return { type, name, props };
    }),
  };
}

it("serves every rule as a mandatory policy, and the generated-secret stack policy", async () => {
  const info = await pack.info();
  expect(info.name).toBe("nova-matrix");
  expect(info.policies).toEqual(
    Object.fromEntries([...POLICY_RULES, "generated-secret"].map((name) => [name, "mandatory"])),
  );
});

describe.each(["staging", "prod"])("stack %s", (stack) => {
  it("passes in an update: no diagnostic for any resource or for the stack", async () => {
    const run = await runStackInChild(stack);
    const { inputs, outputs } = asAnalyzed(run);
    // The pack sees the workloads it must judge, and knows every generator the program uses (random values,
    // Memorystore's AUTH string): each one's output is among the values the stack policy looks for.
    expect(inputs.map((r) => `${r.type}::${r.name}`)).toContain(
      "kubernetes:apps/v1:Deployment::bridge-deployment",
    );
    const generated = generatedSecrets(outputs);
    const generators = outputs.filter((r) => r.type.startsWith("random:") || r.type.startsWith("gcp:redis/"));
    expect(generators.length).toBeGreaterThan(5);
    for (const { type, name, props } of generators)
      expect(
        Object.values(props).some((value) => typeof value === "string" && generated.has(value)),
        `${type}::${name}`,
      ).toBe(true);
    expect(await analyzeStack(stack, inputs, outputs)).toEqual({ perResource: [], stack: [] });
  });

  it("passes in a first preview: what is unknown is skipped with the engine's advisory, nothing fails", async () => {
    const { inputs, outputs } = asAnalyzed(await runStackInChild(stack, undefined, { preview: true }));
    const { perResource, stack: stackDiagnostics } = await analyzeStack(stack, inputs, outputs);
    expect(perResource.filter((d) => d.enforcement !== "advisory")).toEqual([]);
    expect(stackDiagnostics.filter((d) => d.enforcement !== "advisory")).toEqual([]);
    for (const { message } of [...perResource, ...stackDiagnostics])
      expect(message).toMatch(PREVIEW_ADVISORY);
    // The bridge's image is the image job's digest, unknown until then: its check waits for the update.
    expect(perResource).toContainEqual(
      expect.objectContaining({
        policy: "image-tag",
        resource: "kubernetes:apps/v1:Deployment::bridge-deployment",
        message: expect.stringContaining("image is unknown until apply"),
      }),
    );
  });
});

// A Deployment that passes every rule (infra/policy/fixtures.ts); each bad resource breaks one thing in a copy.
const deployment = (container: object, pod: object = {}): Resource => ({
  type: "kubernetes:apps/v1:Deployment",
  name: "app",
  props: {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "app" },
    spec: {
      template: {
        spec: { ...goodPod(), containers: [container], ...pod },
      },
    },
  },
});
const { readinessProbe: _readiness, livenessProbe: _liveness, ...unprobed } = goodContainer();

const BAD: Record<(typeof POLICY_RULES)[number], Resource> = {
  limits: deployment({ ...goodContainer(), resources: { limits: { cpu: "1" } } }),
  probes: deployment(unprobed),
  "non-root": deployment(goodContainer(), { securityContext: {} }),
  "privilege-escalation": deployment({ ...goodContainer(), securityContext: {} }),
  "image-tag": deployment({ ...goodContainer(), image: "ghcr.io/example/app:latest" }),
  "secret-in-env": deployment({ ...goodContainer(), env: [{ name: "API_TOKEN", value: "hunter2" }] }),
  "secret-in-configmap": {
    type: "kubernetes:core/v1:ConfigMap",
    name: "config",
    props: { kind: "ConfigMap", metadata: { name: "config" }, data: { ADMIN_PASSWORD: "changeme" } },
  },
  "public-path": {
    type: "kubernetes:networking.k8s.io/v1:Ingress",
    name: "web",
    props: {
      kind: "Ingress",
      metadata: { name: "web" },
      spec: {
        rules: [
          {
            host: "chat.example.com",
            http: { paths: [{ path: "/_synapse/admin", pathType: "Prefix", backend: {} }] },
          },
        ],
      },
    },
  },
};

describe("a deliberately bad resource per rule", () => {
  it("the good Deployment passes", async () => {
    expect(await pack.analyze("prod", deployment(goodContainer()))).toEqual([]);
  });

  it.each(POLICY_RULES)("%s: reported by its policy, mandatory, saying what to fix", async (rule) => {
    const diagnostics = await pack.analyze("prod", BAD[rule]);
    expect(diagnostics.length).toBeGreaterThan(0);
    for (const diagnostic of diagnostics) {
      expect(diagnostic.policy).toBe(rule);
      expect(diagnostic.enforcement).toBe("mandatory");
      expect(diagnostic.message).toMatch(/^.+\n(Deployment\/app|ConfigMap\/config|Ingress\/web): /);
    }
  });

  it("an unknown value leaves only the checks that need it to the update, and the others still fail", async () => {
    const bad = deployment({ ...goodContainer(), image: KNOWN_AFTER_APPLY, resources: {} });
    const diagnostics = await pack.analyze("prod", bad);
    expect(diagnostics.map((d) => [d.policy, d.enforcement])).toEqual([
      ["limits", "mandatory"],
      ["image-tag", "advisory"],
    ]);
    expect(diagnostics[1]?.message).toMatch(PREVIEW_ADVISORY);
    expect(diagnostics[1]?.message).toContain("Deployment/app: container app: image is unknown until apply");
  });

  it("generated-secret: a generated value in a ConfigMap, seen with the stack's outputs", async () => {
    const password = {
      type: "random:index/randomPassword:RandomPassword",
      name: "db-password",
      props: { length: 32, result: "Gen3ratedSecretValue0123456789ab" },
    };
    const configMap = {
      type: "kubernetes:core/v1:ConfigMap",
      name: "config",
      props: {
        kind: "ConfigMap",
        metadata: { name: "config" },
        data: { "db.yaml": "url: postgres://synapse:Gen3ratedSecretValue0123456789ab@db/synapse" },
      },
    };
    // Per resource the value looks harmless: only the stack policy, which knows the generators, catches it.
    expect(await pack.analyze("prod", configMap)).toEqual([]);
    const diagnostics = await pack.analyzeStack("prod", [password, configMap]);
    expect(diagnostics).toEqual([
      {
        policy: "generated-secret",
        enforcement: "mandatory",
        message: expect.stringContaining(
          "ConfigMap/config: data.db.yaml: holds a generated secret value; use a Secret (secretKeyRef / secret volume) (secret-in-configmap)",
        ),
      },
    ]);
    expect(diagnostics[0]?.message).not.toContain("Gen3ratedSecretValue");
  });
});
