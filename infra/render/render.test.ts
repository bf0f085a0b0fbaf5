// `npm run render` as a user runs it (a child process per render: the mock runtime is process-wide).
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { kubernetesProblems } from "../testing/kubernetes-schema.ts";
import { REDACTED } from "./redact.ts";
import { PROJECT_DIR } from "./run.ts";

let workDir: string;
beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "nova-render-"));
});
afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function render(args: string[]) {
  const result = spawnSync(process.execPath, [join(PROJECT_DIR, "infra/render/cli.ts"), ...args], {
    cwd: PROJECT_DIR,
    encoding: "utf8",
    env: { ...process.env, INIT_CWD: PROJECT_DIR },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe.each(["staging", "prod"])("render --stack %s", (stack) => {
  it("writes the same bytes twice, every Kubernetes object, with secrets redacted", async () => {
    const outputs = [join(workDir, `${stack}-1`), join(workDir, `${stack}-2`)];
    for (const out of outputs) {
      const result = render(["--stack", stack, "--out", out]);
      expect(result.code, result.stderr).toBe(0);
    }
    const read = (dir: string, file: string) => readFile(join(dir, file), "utf8");
    const [first, second] = outputs as [string, string];
    for (const file of ["manifests.yaml", "resources.json"]) {
      expect(await read(second, file), file).toBe(await read(first, file));
    }

    const manifests = parseAllDocuments(await read(first, "manifests.yaml")).map(
      (doc) =>
        doc.toJS() as { kind: string; metadata: { name: string }; stringData?: Record<string, string> },
    );
    const resources = JSON.parse(await read(first, "resources.json")) as { type: string; name: string }[];
    const kubernetesCount = resources.filter((r) => r.type.startsWith("kubernetes:")).length;
    expect(manifests).toHaveLength(kubernetesCount);
    expect(manifests.map((m) => m.kind)).toContain("Deployment");
    for (const secret of manifests.filter((m) => m.kind === "Secret")) {
      for (const value of Object.values(secret.stringData ?? {})) expect(value).toBe(REDACTED);
    }
    // Every generated token has the same shape (48-64 alphanumerics): none may survive outside a redaction.
    const all = `${await read(first, "manifests.yaml")}${await read(first, "resources.json")}`;
    expect(all).not.toMatch(/ed25519 a_/);
    expect(all).toContain(REDACTED);
  }, 300_000); // two renders of the real program: minutes on a loaded two-core machine
});

describe("render with a bad stack file", () => {
  it("fails, naming the key and what it expects", async () => {
    const badFile = join(workDir, "Pulumi.bad.yaml");
    const staging = await readFile(join(PROJECT_DIR, "Pulumi.staging.yaml"), "utf8");
    await writeFile(
      badFile,
      staging
        .replace(
          "nova-matrix:serverName: staging.nova.internal",
          "nova-matrix:serverName: Staging.Nova.Internal",
        )
        .replace("size: 10Gi", "size: ten gigabytes"),
    );
    const result = render(["--stack", "staging", "--stack-file", badFile, "--out", join(workDir, "bad")]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("nova-matrix:serverName: expected a lower-case DNS name");
    expect(result.stderr).toContain("nova-matrix:synapse.storage.size: expected a storage size");
  });

  it("refuses an unknown stack", () => {
    const result = render(["--stack", "dev", "--out", join(workDir, "dev")]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/staging, prod/);
  });
});

describe("rotation through keepers (docs/secrets.md)", () => {
  const renderWithRotation = async (label: string, rotation: string) => {
    const file = join(workDir, `Pulumi.${label}.yaml`);
    const staging = await readFile(join(PROJECT_DIR, "Pulumi.staging.yaml"), "utf8");
    await writeFile(file, `${staging}${rotation ? `  nova-matrix:rotation: ${rotation}\n` : ""}`);
    const out = join(workDir, label);
    const result = render(["--stack", "staging", "--stack-file", file, "--out", out]);
    expect(result.code, result.stderr).toBe(0);
    const objects = parseAllDocuments(await readFile(join(out, "manifests.yaml"), "utf8")).map(
      (doc) =>
        doc.toJS() as {
          kind: string;
          metadata: { name: string };
          spec?: { template?: { metadata?: { annotations?: Record<string, string> } } };
        },
    );
    const deployment = objects.find((o) => o.kind === "Deployment");
    return {
      checksum: deployment?.spec?.template?.metadata?.annotations?.["nova.chat/config-checksum"],
      job: objects.find((o) => o.kind === "Job")?.metadata.name,
    };
  };

  it("rolls Synapse when a secret rotates, and re-runs the database Job only for the database password", async () => {
    const base = await renderWithRotation("rotation-none", "");
    const token = await renderWithRotation("rotation-token", "{ asToken: r1 }");
    const password = await renderWithRotation("rotation-password", "{ databasePassword: r1 }");
    expect(base.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(token.checksum).not.toBe(base.checksum);
    expect(token.job).toBe(base.job);
    expect(password.checksum).not.toBe(base.checksum);
    expect(password.job).not.toBe(base.job);
    expect(password.job).toMatch(/^matrix-synapse-db-setup-[0-9a-f]{10}$/);
  }, 300_000); // three renders of the real program: minutes on a loaded two-core machine
});

describe("monitoring and backups, every scrape style", () => {
  it("adds scrape objects, alert rules, the dashboard and the stack file's backups, each valid against its schema, strictly", async () => {
    const file = join(workDir, "Pulumi.monitored.yaml");
    const staging = parse(await readFile(join(PROJECT_DIR, "Pulumi.staging.yaml"), "utf8")) as {
      config: Record<string, Record<string, unknown>>;
    };
    staging.config["nova-matrix:observability"] = {
      ...staging.config["nova-matrix:observability"],
      scrapeStyle: "both",
    };
    await writeFile(file, stringify(staging));
    const out = join(workDir, "monitored");
    const result = render(["--stack", "staging", "--stack-file", file, "--out", out]);
    expect(result.code, result.stderr).toBe(0);
    const objects = parseAllDocuments(await readFile(join(out, "manifests.yaml"), "utf8")).map(
      (doc) =>
        doc.toJS() as Record<string, unknown> & {
          kind: string;
          metadata: { name: string; namespace: string };
        },
    );
    for (const object of objects) {
      expect(kubernetesProblems(object), `${object.kind} ${object.metadata.name}`).toEqual([]);
      // Cluster-scoped kinds have no namespace: the cluster-wide alert rules and the pods' PriorityClass.
      if (!["ClusterRules", "PriorityClass"].includes(object.kind))
        expect(object.metadata.namespace, `${object.kind} ${object.metadata.name}`).toBe("nova-staging");
    }
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        "ServiceMonitor/matrix-synapse",
        "PodMonitoring/matrix-synapse",
        "PrometheusRule/nova-matrix-alerts",
        "Rules/nova-matrix-alerts",
        "ClusterRules/nova-matrix-alerts-nova-staging",
        "ConfigMap/nova-matrix-bridge-dashboard",
        "ServiceAccount/nova-matrix-backup",
      ]),
    );
    expect(objects.filter((o) => o.kind === "CronJob")).toHaveLength(2);
    const resources = JSON.parse(await readFile(join(out, "resources.json"), "utf8")) as { type: string }[];
    expect(resources.map((r) => r.type)).toEqual(
      expect.arrayContaining(["gcp:storage/bucket:Bucket", "gcp:serviceaccount/account:Account"]),
    );
  });
});
