// The deployment policy (infra/policy/rules.ts) over every rendered object of both stacks, as shipped and with
// the operator's scrape objects too (`scrapeStyle: both`); then each rule against a hand-made bad object, so every
// rule is shown to fail when it should.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { PROJECT_DIR } from "../render/run.ts";
import { runStackInChild } from "../testing/stack-process.ts";
import { goodContainer, goodPod } from "./fixtures.ts";
import {
  hasPodSpec,
  imageTag,
  KNOWN_AFTER_APPLY,
  type PolicyObject,
  policyReport,
  policyViolations,
} from "./rules.ts";

/** Config changed on top of the stack file, per variant. */
const VARIANTS: Record<string, Record<string, (value: unknown) => unknown>> = {
  shipped: {},
  "every scrape style": {
    "nova-matrix:observability": (value) => ({ ...(value as object), scrapeStyle: "both" }),
  },
};
let workDir: string;
beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "nova-policy-"));
});
afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function renderObjects(stack: string, variant: string) {
  const file = join(workDir, `Pulumi.${stack}-${variant.replaceAll(" ", "-")}.yaml`);
  const stackFile = parse(await readFile(join(PROJECT_DIR, `Pulumi.${stack}.yaml`), "utf8")) as {
    config: Record<string, unknown>;
  };
  for (const [key, change] of Object.entries(VARIANTS[variant] ?? {}))
    stackFile.config[key] = change(stackFile.config[key]);
  await writeFile(file, stringify(stackFile));
  const run = await runStackInChild(stack, file);
  return { objects: run.objects as PolicyObject[], secretValues: run.secretValues };
}

describe.each([
  ["staging", "shipped"],
  ["prod", "shipped"],
  ["staging", "every scrape style"],
  ["prod", "every scrape style"],
])("stack %s (%s)", (stack, variant) => {
  it("passes every rule, on every rendered object", async () => {
    const { objects, secretValues } = await renderObjects(stack, variant);
    expect(secretValues.size).toBeGreaterThan(5);
    const kinds = new Set(objects.filter(hasPodSpec).map((o) => o.kind));
    // Both stack files ship backups: their CronJobs are among the rendered objects.
    expect([...kinds]).toEqual(expect.arrayContaining(["Deployment", "Job", "CronJob"]));
    const all = new Set(objects.map((o) => o.kind));
    for (const kind of ["PodMonitoring", "Rules", "ClusterRules"]) expect(all.has(kind), kind).toBe(true);
    if (variant === "every scrape style") expect(all.has("PrometheusRule")).toBe(true);
    if (stack === "prod") expect(objects.map((o) => o.kind)).toContain("Ingress");
    expect(policyViolations(objects, secretValues)).toEqual([]);
  });
});

// A Deployment that passes every rule (./fixtures.ts); each negative test breaks one thing in a copy.
const deployment = (mutate: (pod: ReturnType<typeof goodPod>) => void = () => {}): PolicyObject => {
  const pod = goodPod();
  mutate(pod);
  return { kind: "Deployment", metadata: { name: "app" }, spec: { template: { spec: pod } } };
};
const rulesOf = (objects: PolicyObject[], secrets: string[] = []) =>
  policyViolations(objects, new Set(secrets)).map((v) => `${v.object} ${v.rule}: ${v.detail}`);

describe("policy rules on hand-made objects", () => {
  it("accepts the good Deployment", () => {
    expect(rulesOf([deployment()])).toEqual([]);
  });

  it("requires a memory limit, in init containers, Jobs and CronJobs too", () => {
    const noLimit = { ...goodContainer(), name: "init", resources: { limits: { cpu: "1" } } } as never;
    const pod = { ...goodPod(), initContainers: [noLimit] };
    expect(rulesOf([deployment((p) => Object.assign(p, pod))])).toEqual([
      "Deployment/app limits: init container init: resources.limits.memory is not set (a memory limit is required)",
    ]);
    const job: PolicyObject = { kind: "Job", metadata: { name: "once" }, spec: { template: { spec: pod } } };
    const cron: PolicyObject = {
      kind: "CronJob",
      metadata: { name: "nightly" },
      spec: { jobTemplate: { spec: { template: { spec: pod } } } },
    };
    expect(rulesOf([job, cron]).map((line) => line.split(":")[0])).toEqual([
      "Job/once limits",
      "CronJob/nightly limits",
    ]);
  });

  it("requires readiness and liveness probes on a Deployment's containers, not on a Job's", () => {
    const unprobed = (pod: ReturnType<typeof goodPod>) => {
      const { readinessProbe: _r, livenessProbe: _l, ...container } = goodContainer();
      pod.containers = [container as never];
    };
    expect(rulesOf([deployment(unprobed)])).toEqual([
      "Deployment/app probes: container app: readinessProbe is not set",
      "Deployment/app probes: container app: livenessProbe is not set",
    ]);
    const pod = goodPod();
    unprobed(pod);
    expect(rulesOf([{ kind: "Job", metadata: { name: "once" }, spec: { template: { spec: pod } } }])).toEqual(
      [],
    );
  });

  it("refuses root: no runAsNonRoot, or runAsUser 0 in the container", () => {
    expect(rulesOf([deployment((p) => Object.assign(p, { securityContext: {} }))])).toEqual([
      "Deployment/app non-root: container app: runAsNonRoot must be true (container or pod securityContext)",
    ]);
    const root = (p: ReturnType<typeof goodPod>) => {
      (p.containers[0] as { securityContext: object }).securityContext = {
        allowPrivilegeEscalation: false,
        runAsUser: 0,
      };
    };
    expect(rulesOf([deployment(root)])).toEqual([
      "Deployment/app non-root: container app: runAsUser is 0 (root)",
    ]);
  });

  it("requires allowPrivilegeEscalation: false, not just unset", () => {
    const unset = (p: ReturnType<typeof goodPod>) => {
      (p.containers[0] as { securityContext: object }).securityContext = {};
    };
    expect(rulesOf([deployment(unset)])).toEqual([
      "Deployment/app privilege-escalation: container app: securityContext.allowPrivilegeEscalation must be false",
    ]);
  });

  it("refuses a latest or missing tag, accepts a digest and a registry port", () => {
    expect(imageTag("registry.local:5000/app")).toBeUndefined();
    expect(imageTag("registry.local:5000/app:1.0")).toBe("1.0");
    const withImage = (image: string) =>
      deployment((p) => Object.assign(p.containers[0] as object, { image }));
    expect(rulesOf([withImage("ghcr.io/example/app:latest")])).toEqual([
      'Deployment/app image-tag: container app: image ghcr.io/example/app:latest uses the "latest" tag; pin a version',
    ]);
    expect(rulesOf([withImage("registry.local:5000/app")])).toEqual([
      'Deployment/app image-tag: container app: image "registry.local:5000/app" has no tag; pin a version',
    ]);
    expect(rulesOf([withImage(`ghcr.io/example/app@sha256:${"a".repeat(64)}`)])).toEqual([]);
  });

  it("refuses a generated secret or a credential-looking literal in an env value", () => {
    const withEnv = (env: { name: string; value: string }[]) =>
      deployment((p) => Object.assign(p.containers[0] as object, { env }));
    expect(
      rulesOf(
        [withEnv([{ name: "DATABASE_URL", value: "postgres://u:Gen3ratedSecretValue@db/x" }])],
        ["Gen3ratedSecretValue"],
      ),
    ).toEqual([
      "Deployment/app secret-in-env: container app: env DATABASE_URL: holds a generated secret value; use a Secret (secretKeyRef / secret volume)",
    ]);
    expect(rulesOf([withEnv([{ name: "API_TOKEN", value: "hunter2" }])])).toEqual([
      "Deployment/app secret-in-env: container app: env API_TOKEN: a credential-looking name with a literal value; use a Secret (secretKeyRef / secret volume)",
    ]);
    expect(rulesOf([withEnv([{ name: "API_TOKEN", value: "" }])])).toEqual([]);
  });

  it("refuses secrets in a ConfigMap: a generated value, a credential-named key, a credential line in a file", () => {
    const configMap = (data: Record<string, string>): PolicyObject => ({
      kind: "ConfigMap",
      metadata: { name: "config" },
      data,
    });
    expect(
      rulesOf(
        [configMap({ "app.yaml": "url: https://x/?k=Gen3ratedSecretValue" })],
        ["Gen3ratedSecretValue"],
      ),
    ).toEqual([
      "ConfigMap/config secret-in-configmap: data.app.yaml: holds a generated secret value; use a Secret (secretKeyRef / secret volume)",
    ]);
    expect(rulesOf([configMap({ ADMIN_PASSWORD: "changeme" })])).toEqual([
      "ConfigMap/config secret-in-configmap: data.ADMIN_PASSWORD: a credential-looking name with a literal value; use a Secret (secretKeyRef / secret volume)",
    ]);
    expect(
      rulesOf([
        configMap({
          "homeserver.yaml":
            "server_name: x\nmacaroon_secret_key_path: /secrets/key\nregistration_shared_secret: 9fQk2LxV7pWm3RtZ8cHs\n",
        }),
      ]),
    ).toEqual([
      "ConfigMap/config secret-in-configmap: data.homeserver.yaml: line 3: registration_shared_secret has a literal credential-looking value",
    ]);
  });

  it("refuses an Ingress exposing the admin API, metrics, or / broadly", () => {
    const ingress = (paths: { path: string; pathType: string }[], extra: object = {}): PolicyObject => ({
      kind: "Ingress",
      metadata: { name: "web" },
      spec: {
        ...extra,
        rules: [{ host: "chat.example.com", http: { paths: paths.map((p) => ({ ...p, backend: {} })) } }],
      },
    });
    expect(
      rulesOf([
        ingress([
          { path: "/_matrix/client", pathType: "Prefix" },
          { path: "/.well-known/matrix/client", pathType: "Exact" },
        ]),
      ]),
    ).toEqual([]);
    expect(rulesOf([ingress([{ path: "/_synapse/admin", pathType: "Prefix" }])])).toEqual([
      "Ingress/web public-path: host chat.example.com path /_synapse/admin (Prefix) exposes /_synapse/admin",
    ]);
    expect(rulesOf([ingress([{ path: "/_synapse", pathType: "Prefix" }])])).toEqual([
      "Ingress/web public-path: host chat.example.com path /_synapse (Prefix) exposes /_synapse/admin",
      "Ingress/web public-path: host chat.example.com path /_synapse (Prefix) exposes /_synapse/metrics",
    ]);
    expect(rulesOf([ingress([{ path: "/_synapse/metrics/extra", pathType: "Exact" }])])).toEqual([
      "Ingress/web public-path: host chat.example.com path /_synapse/metrics/extra (Exact) exposes /_synapse/metrics",
    ]);
    expect(rulesOf([ingress([{ path: "/_synapse/client", pathType: "Prefix" }])])).toEqual([]);
    expect(rulesOf([ingress([{ path: "/", pathType: "Prefix" }])])).toEqual([
      "Ingress/web public-path: host chat.example.com path / (Prefix) exposes / broadly; route explicit Matrix paths only",
    ]);
    expect(rulesOf([ingress([], { defaultBackend: { service: { name: "matrix-synapse" } } })])).toEqual([
      "Ingress/web public-path: spec.defaultBackend routes every unmatched path (/ broadly); route explicit paths only",
    ]);
  });
});

describe("values unknown until apply (a preview)", () => {
  const lines = (findings: { object: string; rule: string; detail: string }[]) =>
    findings.map((v) => `${v.object} ${v.rule}: ${v.detail}`);

  it("leaves a check that needs an unknown value undecided, and still decides the others", () => {
    const report = policyReport([
      deployment((p) =>
        Object.assign(p.containers[0] as object, {
          image: KNOWN_AFTER_APPLY,
          resources: {},
          env: [
            { name: "DATABASE_PASSWORD", value: KNOWN_AFTER_APPLY },
            { name: "API_TOKEN", value: "hunter2" },
          ],
        }),
      ),
    ]);
    expect(lines(report.violations)).toEqual([
      "Deployment/app limits: container app: resources.limits.memory is not set (a memory limit is required)",
      "Deployment/app secret-in-env: container app: env API_TOKEN: a credential-looking name with a literal value; use a Secret (secretKeyRef / secret volume)",
    ]);
    expect(lines(report.undecided)).toEqual([
      "Deployment/app image-tag: container app: image is unknown until apply",
      "Deployment/app secret-in-env: container app: env.0.value is unknown until apply",
    ]);
  });

  it("an unknown pod spec leaves every container rule undecided; an object without unknowns has none", () => {
    const unknownPod: PolicyObject = {
      kind: "Deployment",
      metadata: { name: "app" },
      spec: { template: { spec: KNOWN_AFTER_APPLY } },
    };
    const report = policyReport([unknownPod, deployment()]);
    expect(report.violations).toEqual([]);
    expect(report.undecided.map((v) => v.rule)).toEqual([
      "limits",
      "probes",
      "non-root",
      "privilege-escalation",
      "image-tag",
      "secret-in-env",
    ]);
    expect(new Set(report.undecided.map((v) => v.detail))).toEqual(
      new Set(["pod spec: spec.template.spec is unknown until apply"]),
    );
  });
});
